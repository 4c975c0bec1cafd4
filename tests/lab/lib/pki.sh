# tests/lab/lib/pki.sh: the lab's test PKI, made with openssl (sourced by lab.sh).
#
# Under $LAB_DIR/pki:
#   root.crt            the lab root CA (the only certificate in ca-bundle.pem)
#   inter.crt           the lab intermediate CA, signed by the root; issues every good leaf
#   untrusted-ca.crt    a second root CA that nothing trusts
#   ca-bundle.pem       what a client of the lab trusts (root only)
#   <leaf>.key          a leaf's private key (EC P-256)
#   <leaf>.crt          the leaf certificate alone
#   <leaf>.chain.pem    what the server sends: the leaf, then the intermediate when it has one
#                       and the variant is not "nochain"
# Leaf variants: inter (good), nochain, expired (validity over in 2021), untrusted (second CA),
# self (self-signed).
# shellcheck shell=bash

pki_dir() { printf '%s\n' "$LAB_DIR/pki"; }

# pki_ca_conf NAME: an `openssl ca` configuration for CA NAME, so leaves can get explicit dates.
pki_ca_conf() {
    local p name=$1
    p=$(pki_dir)
    mkdir -p "$p/ca-$name"
    : >"$p/ca-$name/index.txt"
    printf '1000\n' >"$p/ca-$name/serial"
    cat >"$p/ca-$name/ca.cnf" <<EOF
[ ca ]
default_ca = lab
[ lab ]
dir = $p/ca-$name
database = \$dir/index.txt
serial = \$dir/serial
new_certs_dir = \$dir
certificate = $p/$name.crt
private_key = $p/$name.key
default_md = sha256
policy = anything
unique_subject = no
copy_extensions = none
[ anything ]
commonName = supplied
EOF
}

# pki_init: the three CAs and the bundle.
pki_init() {
    local p
    p=$(pki_dir)
    mkdir -p "$p"
    openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
        -subj "/CN=stsgate lab root CA" -keyout "$p/root.key" -out "$p/root.crt" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -subj "/CN=stsgate lab intermediate CA" -keyout "$p/inter.key" -out "$p/inter.csr" 2>/dev/null
    printf '%s\n' "basicConstraints=critical,CA:TRUE,pathlen:0" \
        "keyUsage=critical,keyCertSign,cRLSign" "subjectKeyIdentifier=hash" \
        "authorityKeyIdentifier=keyid" >"$p/inter.ext"
    openssl x509 -req -in "$p/inter.csr" -CA "$p/root.crt" -CAkey "$p/root.key" \
        -CAcreateserial -days 3650 -extfile "$p/inter.ext" -out "$p/inter.crt" 2>/dev/null
    openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
        -subj "/CN=stsgate lab untrusted CA" -keyout "$p/untrusted-ca.key" \
        -out "$p/untrusted-ca.crt" -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    pki_ca_conf inter
    pki_ca_conf untrusted-ca
    cp "$p/root.crt" "$p/ca-bundle.pem"
}

# pki_leaf NAME VARIANT DNSNAME...: issue leaf NAME for the given names (the first is the CN).
pki_leaf() {
    local name=$1 variant=$2 p ext san="" n
    shift 2
    [ $# -gt 0 ] || lab_die "pki_leaf $name: no names"
    p=$(pki_dir)
    for n in "$@"; do san+="${san:+,}DNS:$n"; done
    ext="$p/$name.ext"
    printf '%s\n' "basicConstraints=critical,CA:FALSE" \
        "keyUsage=critical,digitalSignature,keyEncipherment" \
        "extendedKeyUsage=serverAuth" "subjectAltName=$san" >"$ext"
    if [ "$variant" = self ]; then
        openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 825 \
            -subj "/CN=$1" -keyout "$p/$name.key" -out "$p/$name.crt" \
            -addext "subjectAltName=$san" -addext "basicConstraints=critical,CA:FALSE" 2>/dev/null
        cp "$p/$name.crt" "$p/$name.chain.pem"
        return
    fi
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$1" \
        -keyout "$p/$name.key" -out "$p/$name.csr" 2>/dev/null
    local ca=inter dates=(-days 825)
    case "$variant" in
    inter | nochain) ;;
    expired) dates=(-startdate 20200101000000Z -enddate 20210101000000Z) ;;
    untrusted) ca=untrusted-ca ;;
    *) lab_die "pki_leaf $name: unknown variant $variant" ;;
    esac
    openssl ca -batch -notext -config "$p/ca-$ca/ca.cnf" -in "$p/$name.csr" -extfile "$ext" \
        "${dates[@]}" -out "$p/$name.crt" 2>/dev/null ||
        lab_die "openssl ca failed for leaf $name"
    if [ "$variant" = inter ] || [ "$variant" = expired ]; then
        cat "$p/$name.crt" "$p/inter.crt" >"$p/$name.chain.pem"
    else
        cp "$p/$name.crt" "$p/$name.chain.pem"
    fi
}

# pki_cert_file SPEC: the certificate a TLSA data spec refers to (recv:NAME or ca:NAME).
pki_cert_file() {
    local p
    p=$(pki_dir)
    case "$1" in
    recv:*) printf '%s\n' "$p/recv-${1#recv:}.crt" ;;
    ca:root) printf '%s\n' "$p/root.crt" ;;
    ca:inter) printf '%s\n' "$p/inter.crt" ;;
    ca:untrusted) printf '%s\n' "$p/untrusted-ca.crt" ;;
    *) return 1 ;;
    esac
}

# pki_tlsa_data SELECTOR MATCHING SPEC: the TLSA certificate association data, in hex.
pki_tlsa_data() {
    local sel=$1 mt=$2 spec=$3 crt
    case "$spec" in
    random)
        case "$mt" in
        0 | 1) openssl rand -hex 32 ;;
        2) openssl rand -hex 64 ;;
        esac
        return
        ;;
    *[!0-9a-fA-F]*) ;;
    *)
        printf '%s\n' "$spec"
        return
        ;;
    esac
    crt=$(pki_cert_file "$spec") || lab_die "unknown TLSA data '$spec'"
    [ -r "$crt" ] || lab_die "TLSA data $spec: no certificate $crt"
    {
        if [ "$sel" = 0 ]; then
            openssl x509 -in "$crt" -outform DER
        else
            openssl x509 -in "$crt" -pubkey -noout | openssl pkey -pubin -outform DER
        fi
    } | case "$mt" in
        0) od -An -v -tx1 | tr -d ' \n' ;;
        1) openssl dgst -sha256 -r | cut -d' ' -f1 ;;
        2) openssl dgst -sha512 -r | cut -d' ' -f1 ;;
        *) lab_die "TLSA matching type $mt unsupported" ;;
        esac
    echo
}

# pki_build: the CAs, a leaf per receiver and one per policy host.
pki_build() {
    pki_init
    local p names recv addr cert nm tls reply ports n
    p=$(pki_dir)
    while read -r recv addr cert nm tls reply ports; do
        [ "$cert" = - ] && continue
        names=()
        case "$nm" in
        =*) names=("${nm#=}") ;;
        *)
            if [[ $nm == *mx* ]] && [ -r "$p/names/$recv.mx" ]; then
                mapfile -t -O ${#names[@]} names < <(sort -u "$p/names/$recv.mx")
            fi
            if [[ $nm == *domain* ]] && [ -r "$p/names/$recv.domain" ]; then
                mapfile -t -O ${#names[@]} names < <(sort -u "$p/names/$recv.domain")
            fi
            ;;
        esac
        [ ${#names[@]} -gt 0 ] || names=("$recv.recv.stslab")
        # The CN (first name) is the receiver's own MX name when it has one: easier to read.
        for n in "mx.$recv.plain.stslab" "$recv.plain.stslab"; do
            if printf '%s\n' "${names[@]}" | grep -qx "$n"; then
                mapfile -t names < <(printf '%s\n' "$n"; printf '%s\n' "${names[@]}" | grep -vx "$n")
                break
            fi
        done
        pki_leaf "recv-$recv" "$cert" "${names[@]}"
    done < <(lab_receivers)

    local d beh variant
    while read -r _ d beh; do
        case "$beh" in
        none | refused) continue ;;
        expired | untrusted | nochain) variant=$beh ;;
        *) variant=inter ;;
        esac
        if [ "$beh" = wrongname ]; then
            pki_leaf "policy-$d" inter wrong-name.plain.stslab
        else
            pki_leaf "policy-$d" "$variant" "mta-sts.$d"
        fi
    done < <(grep '^policy ' "$LAB_DIR/manifest")
    while read -r _ d; do
        pki_leaf "sink-$d" inter "$d"
    done < <(grep '^sink ' "$LAB_DIR/manifest")
}
