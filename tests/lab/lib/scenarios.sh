# tests/lab/lib/scenarios.sh: turn the scenario files into zone sources, policy files, the
# names each receiver's certificate must carry, and the manifest (sourced by lab.sh).
#
# Input:  $LAB_SRC/scenarios/*.conf (format: docs/testing.md, "Scenario files").
# Output, under $LAB_DIR:
#   dns/src/<zone>.records   zone records, one per line, absolute names (SOA/NS added later)
#   pki/names/<recv>.mx      host names that point at receiver <recv>
#   pki/names/<recv>.domain  domains whose MX points at receiver <recv>
#   www/<domain>/.well-known/mta-sts.txt   the policy text of each policy host
#   manifest                 what the self-check and the later steps need, one fact per line:
#                              domain <domain> <zone> <file>
#                              mx <domain> <pref> <host> <receiver|->
#                              policy <domain> <behaviour>
#                              tlsa <owner> <usage> <selector> <matching> <data spec>
#                              tamper <owner> <type>
#                              sink <host>                   (an HTTPS POST sink on nginx)
#                              rr <name> <type> <rdata>      (every record the zones serve)
# shellcheck shell=bash

sc_file="" sc_line=0
sc_domain="" sc_policy="" sc_text="" sc_eol=lf

sc_err() { lab_die "$sc_file:$sc_line: $*"; }

# sc_name NAME: expand "@" (the block's domain) and "X.@"; print the name without trailing dot.
sc_name() {
    local n=$1
    case "$n" in
    @) n=$sc_domain ;;
    *.@) n=${n%@}$sc_domain ;;
    esac
    printf '%s\n' "${n%.}"
}

# sc_emit NAME TYPE RDATA: add a record to the zone NAME belongs to.
sc_emit() {
    local name=$1 type=$2 rdata=$3 zone
    zone=$(lab_zone_of "$name")
    [ -n "$zone" ] || sc_err "$name is in no lab zone (see tests/lab/zones.conf)"
    printf '%s.\t300\tIN\t%s\t%s\n' "$name" "$type" "$rdata" >>"$LAB_DIR/dns/src/$zone.records"
    printf 'rr %s %s %s\n' "$name" "$type" "$rdata" >>"$LAB_DIR/manifest"
}

sc_receiver_addr() {
    lab_receiver_field "$1" 2 || sc_err "unknown receiver '$1' (see tests/lab/receivers.conf)"
}

# sc_point NAME RECEIVER: NAME gets an A record for RECEIVER, and RECEIVER's certificate names it.
sc_point() {
    local name=$1 recv=$2 addr
    if [[ $recv =~ ^[0-9.]+$ ]]; then
        sc_emit "$name" A "$recv"
        return
    fi
    addr=$(sc_receiver_addr "$recv")
    sc_emit "$name" A "$addr"
    printf '%s\n' "$name" >>"$LAB_DIR/pki/names/$recv.mx"
}

# sc_point6 NAME RECEIVER: NAME gets an AAAA record for RECEIVER's IPv6 address, and RECEIVER's
# certificate names it.
sc_point6() {
    local name=$1 recv=$2
    sc_emit "$name" AAAA "$(lab_v6_of "$(sc_receiver_addr "$recv")")"
    printf '%s\n' "$name" >>"$LAB_DIR/pki/names/$recv.mx"
}

# sc_end_block: finish the current domain block (write its policy host's files).
sc_end_block() {
    [ -n "$sc_domain" ] || return 0
    local d=$sc_domain beh=${sc_policy:-none}
    printf 'policy %s %s\n' "$d" "$beh" >>"$LAB_DIR/manifest"
    if [ "$beh" != none ]; then
        [ -n "$sc_text" ] || sc_err "domain $d: policy $beh needs a mode or 'line' text"
        mkdir -p "$LAB_DIR/www/$d/.well-known"
        local f="$LAB_DIR/www/$d/.well-known/mta-sts.txt"
        if [ "$sc_eol" = crlf ]; then
            printf '%s' "$sc_text" | sed 's/$/\r/' >"$f"
        else
            printf '%s' "$sc_text" >"$f"
        fi
        if [ "$beh" = refused ]; then
            sc_emit "mta-sts.$d" A "$LAB_REFUSED_ADDR"
        else
            sc_emit "mta-sts.$d" A "$LAB_POLICY_ADDR"
        fi
    fi
    sc_domain="" sc_policy="" sc_text="" sc_eol=lf
}

sc_policy_behaviours=" ok 404 301 500 type biglen bigchunk expired untrusted wrongname nochain stall slowbody refused none "

# sc_parse FILE: read one scenario file.
sc_parse() {
    sc_file=$1 sc_line=0
    local line kw rest name a b c d e
    while IFS= read -r line || [ -n "$line" ]; do
        sc_line=$((sc_line + 1))
        line=${line%%$'\r'}
        [[ $line =~ ^[[:space:]]*(#|$) ]] && continue
        read -r kw rest <<<"$line"
        if [ "$kw" != domain ] && [ -z "$sc_domain" ]; then
            sc_err "'$kw' before any 'domain' line"
        fi
        case "$kw" in
        domain)
            sc_end_block
            sc_domain=${rest%.}
            [ -n "$(lab_zone_of "$sc_domain")" ] || sc_err "$sc_domain is in no lab zone"
            if grep -q "^domain $sc_domain " "$LAB_DIR/manifest" 2>/dev/null; then
                sc_err "domain $sc_domain is defined twice"
            fi
            printf 'domain %s %s %s\n' "$sc_domain" "$(lab_zone_of "$sc_domain")" \
                "${sc_file##*/}" >>"$LAB_DIR/manifest"
            ;;
        mx)
            read -r a b c d <<<"$rest"
            [ -n "$b" ] && [ -z "$d" ] || sc_err "usage: mx PREF HOST [RECEIVER]"
            if [ "$b" = . ]; then
                sc_emit "$sc_domain" MX "$a ."
                printf 'mx %s %s . -\n' "$sc_domain" "$a" >>"$LAB_DIR/manifest"
                continue
            fi
            name=$(sc_name "$b")
            sc_emit "$sc_domain" MX "$a $name."
            printf 'mx %s %s %s %s\n' "$sc_domain" "$a" "$name" "${c:--}" >>"$LAB_DIR/manifest"
            if [ -n "$c" ]; then
                sc_point "$name" "$c"
                printf '%s\n' "$sc_domain" >>"$LAB_DIR/pki/names/$c.domain"
            fi
            ;;
        a)
            read -r a b c <<<"$rest"
            [ -n "$b" ] && [ -z "$c" ] || sc_err "usage: a NAME RECEIVER|ADDRESS"
            name=$(sc_name "$a")
            sc_point "$name" "$b"
            if [ "$name" = "$sc_domain" ] && ! [[ $b =~ ^[0-9.]+$ ]]; then
                printf '%s\n' "$sc_domain" >>"$LAB_DIR/pki/names/$b.domain"
                printf 'mx %s 0 %s %s\n' "$sc_domain" "$name" "$b" >>"$LAB_DIR/manifest"
            fi
            ;;
        aaaa)
            read -r a b c <<<"$rest"
            [ -n "$b" ] && [ -z "$c" ] || sc_err "usage: aaaa NAME RECEIVER"
            sc_point6 "$(sc_name "$a")" "$b"
            ;;
        cname)
            read -r a b c <<<"$rest"
            [ -n "$b" ] && [ -z "$c" ] || sc_err "usage: cname NAME TARGET"
            sc_emit "$(sc_name "$a")" CNAME "$(sc_name "$b")."
            ;;
        txt)
            read -r a b <<<"$rest"
            [ -n "$b" ] || sc_err "usage: txt NAME \"string\"..."
            sc_emit "$(sc_name "$a")" TXT "$b"
            ;;
        sts)
            [ -n "$rest" ] || sc_err "usage: sts \"string\"..."
            sc_emit "_mta-sts.$sc_domain" TXT "$rest"
            ;;
        tlsa)
            read -r a b c d e <<<"$rest"
            [ -n "${e:-}" ] || sc_err "usage: tlsa HOST USAGE SELECTOR MATCHING DATA"
            printf 'tlsa _25._tcp.%s %s %s %s %s\n' "$(sc_name "$a")" "$b" "$c" "$d" "$e" \
                >>"$LAB_DIR/manifest"
            ;;
        policy)
            read -r a b c <<<"$rest"
            [[ $sc_policy_behaviours == *" $a "* ]] || sc_err "unknown policy behaviour '$a'"
            sc_policy=$a
            if [ -n "$b" ]; then
                sc_text+="version: STSv1"$'\n'"mode: $b"$'\n'
                local -a pats
                read -r -a pats <<<"$c"
                for name in "${pats[@]}"; do
                    case "$name" in
                    "*.@") name="*.$sc_domain" ;;
                    *) name=$(sc_name "$name") ;;
                    esac
                    sc_text+="mx: $name"$'\n'
                done
                sc_text+="max_age: 86400"$'\n'
            fi
            ;;
        line) sc_text+="$rest"$'\n' ;;
        eol)
            [ "$rest" = crlf ] || [ "$rest" = lf ] || sc_err "usage: eol crlf|lf"
            sc_eol=$rest
            ;;
        sink)
            # An HTTPS endpoint on the policy hosts' nginx that stores every POST body
            # (TLS-RPT reports sent with an https: rua).
            read -r a b <<<"$rest"
            [ -n "$a" ] && [ -z "$b" ] || sc_err "usage: sink HOST"
            name=$(sc_name "$a")
            sc_emit "$name" A "$LAB_POLICY_ADDR"
            printf 'sink %s\n' "$name" >>"$LAB_DIR/manifest"
            ;;
        tamper)
            read -r a b <<<"$rest"
            [ -n "$b" ] || sc_err "usage: tamper NAME TYPE"
            printf 'tamper %s %s\n' "$(sc_name "$a")" "$b" >>"$LAB_DIR/manifest"
            ;;
        *) sc_err "unknown keyword '$kw'" ;;
        esac
    done <"$sc_file"
    sc_end_block
}

# scenarios_build: parse every scenario file.
scenarios_build() {
    mkdir -p "$LAB_DIR/dns/src" "$LAB_DIR/pki/names" "$LAB_DIR/www"
    : >"$LAB_DIR/manifest"
    local f
    for f in "$LAB_SRC"/scenarios/*.conf; do
        sc_parse "$f"
    done
}
