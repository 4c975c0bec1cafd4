#!/usr/bin/env bash
# tests/lab/selfcheck.sh: check a running lab against itself with standard tools (the ctest
# `lab_selfcheck` test). Every fact the scenarios declare is checked:
#   - dig: every record of every scenario is served as written; signed zones carry AD, unsigned
#     ones do not, the bogus zone and tampered RRsets are SERVFAIL; NXDOMAIN where nothing is;
#   - curl --cacert: every policy host gives its policy or its failure (status, type, size,
#     chunking, certificate errors, the stall hits curl --max-time); the proxy tunnels; the
#     HTTPS sinks keep what is POSTed;
#   - openssl s_client -starttls smtp: every receiver presents its own certificate, chain and
#     verification result (or no STARTTLS, or a failing handshake);
#   - swaks: every receiver accepts (and stores), defers or rejects as configured; the
#     STARTTLS-stripping relay hides STARTTLS and passes mail on in the clear;
#   - the mock DNS responder's four behaviours.
# Prints one "ok"/"not ok" line per check; exits 1 if any check failed.
# Usage: selfcheck.sh [--dir LABDIR]   (else $LAB_ENV, $LAB_DIR, the default lab directory)
set -euo pipefail
here=$(dirname "$(readlink -f "$0")")
. "$here/lib/common.sh"

if [ "${1:-}" = --dir ]; then
    LAB_ENV="${2:?--dir needs a directory}/env"
    shift 2
fi
if [ "${1:-}" != --inside ]; then
    [ "$(id -u)" = 0 ] || { echo "SKIP: the lab needs root"; exit 77; }
    lab_find_env
    # Whether every daemon `up` started is alive in the namespace (checked from outside).
    export LAB_STATUS_OUT
    LAB_STATUS_OUT=$("$LAB_SRC/lab.sh" status --dir "$LAB_DIR" 2>&1) && export LAB_STATUS_OK=1
    # Run the checks inside the namespace: /etc/resolv.conf is then the lab's resolver.
    exec ip netns exec "$LAB_NS" "$0" --inside
fi
lab_find_env
M=$LAB_MANIFEST
total=0 failed=0 t0=$SECONDS

pass() { total=$((total + 1)); printf 'ok %d - %s\n' "$total" "$1"; }
fail() {
    total=$((total + 1)) failed=$((failed + 1))
    printf 'not ok %d - %s\n' "$total" "$1"
    [ -z "${2:-}" ] || printf '%s\n' "$2" | sed 's/^/#   /' | head -n 20
}
# check DESC CMD...: pass when CMD succeeds; CMD may print why it failed.
check() {
    local desc=$1 out
    shift
    if out=$("$@" 2>&1); then pass "$desc"; else fail "$desc" "$out"; fi
}
zone_kind() { awk -v z="$(lab_zone_of "$1")" '$1 == z { print $2 }' "$LAB_SRC/zones.conf"; }
norm() { tr -d ' \t' | tr 'A-Z' 'a-z' | sort; }

# ---- DNS ------------------------------------------------------------------------------------
# dns_all: ask every (name, type) of the manifest in one dig run, then judge every answer in one
# awk pass: the answer must hold exactly the manifest's records, with the DNSSEC status the zone's
# kind promises (signed: NOERROR and AD; unsigned: NOERROR, no AD; bogus or tampered: SERVFAIL).
# Prints one line per question: "ok|fail <name> <type> <zone kind> [why]".
dns_all() {
    local q
    q=$(mktemp)
    awk '$1 == "rr" { print $2, $3, "+dnssec +noall +comments +question +answer +tries=2 +time=2" }' \
        "$M" | sort -u >"$q"
    dig -f "$q" 2>&1 | awk -v zones="$LAB_SRC/zones.conf" -v manifest="$M" -v questions="$q" '
        function norm(s) { gsub(/[ \t]/, "", s); return tolower(s) }
        function sorted(list, n,    a, i, j, t, out) {
            n = split(list, a, "\034")
            for (i = 2; i <= n; i++) {
                t = a[i]
                for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]
                a[j + 1] = t
            }
            out = ""
            for (i = 1; i <= n; i++) if (a[i] != "") out = out "|" a[i]
            return out
        }
        function kind_of(name,    z, best) {
            best = ""
            for (z in kind)
                if ((name == z || substr(name, length(name) - length(z)) == "." z) &&
                    length(z) > length(best)) best = z
            return best == "" ? "none" : kind[best]
        }
        function finish() {
            if (qname != "") { st[qname, qtype] = status; fl[qname, qtype] = flags; got[qname, qtype] = rd }
            qname = ""; status = ""; flags = ""; rd = ""
        }
        BEGIN {
            while ((getline line < zones) > 0)
                if (line !~ /^#/ && split(line, f) == 2) kind[f[1]] = f[2]
            while ((getline line < manifest) > 0) {
                n = split(line, f)
                if (f[1] == "rr") {
                    r = ""
                    for (i = 4; i <= n; i++) r = r " " f[i]
                    want[f[2], f[3]] = want[f[2], f[3]] "\034" norm(r)
                } else if (f[1] == "tamper") tampered[f[2], f[3]] = 1
            }
        }
        /^;; ->>HEADER<<-/ { finish(); status = $0; sub(/.*status: /, "", status); sub(/,.*/, "", status) }
        /^;; flags:/ { flags = $0; sub(/^;; flags: /, "", flags); sub(/;.*/, "", flags) }
        /^;[^; ]/ { qname = substr($1, 2); sub(/\.$/, "", qname); qtype = $NF }
        !/^;/ && NF >= 5 && $4 == qtype && qname != "" {
            r = ""
            for (i = 5; i <= NF; i++) r = r " " $i
            rd = rd "\034" norm(r)
        }
        END {
            finish()
            while ((getline line < questions) > 0) {
                split(line, f); name = f[1]; type = f[2]; k = kind_of(name)
                if (!((name, type) in st)) { print "fail", name, type, k, "no answer"; continue }
                s = st[name, type]; fs = " " fl[name, type] " "
                if (k == "bogus" || ((name, type) in tampered)) {
                    if (s == "SERVFAIL") print "ok", name, type, k
                    else print "fail", name, type, k, "want SERVFAIL, got " s
                    continue
                }
                if (s != "NOERROR") { print "fail", name, type, k, "want NOERROR, got " s; continue }
                if (k == "signed" && fs !~ / ad /) { print "fail", name, type, k, "no AD:" fs; continue }
                if (k == "unsigned" && fs ~ / ad /) { print "fail", name, type, k, "AD:" fs; continue }
                w = sorted(want[name, type]); g = sorted(got[name, type])
                if (w != g) print "fail", name, type, k, "want " w " got " g
                else print "ok", name, type, k
            }
        }'
    rm -f "$q"
}

# dns_status NAME TYPE STATUS [ad|noad]
dns_status() {
    local out status flags
    out=$(dig +dnssec +noall +comments +tries=2 +time=2 "$1" "$2")
    status=$(sed -n 's/.*status: \([A-Z]*\).*/\1/p' <<<"$out")
    flags=$(sed -n 's/^;; flags: \([a-z ]*\);.*/\1/p' <<<"$out")
    [ "$status" = "$3" ] || { echo "want $3, got $status"; return 1; }
    case "${4:-}" in
    ad) [[ " $flags " == *" ad "* ]] || { echo "no AD: $flags"; return 1; } ;;
    noad) [[ " $flags " != *" ad "* ]] || { echo "AD: $flags"; return 1; } ;;
    esac
}

echo "# the instance (at $((SECONDS - t0)) s)"
if [ "${LAB_STATUS_OK:-0}" = 1 ]; then pass "every daemon is running (scripts/lab status)"
else fail "every daemon is running (scripts/lab status)" "${LAB_STATUS_OUT:-}"; fi

echo "# DNS: every record the scenarios declare ($(grep -c '^rr ' "$M") records) (at $((SECONDS - t0)) s)"
check "the resolver in /etc/resolv.conf is the lab's" grep -qx "nameserver $LAB_RESOLVER" /etc/resolv.conf
while read -r res name type kind why; do
    if [ "$res" = ok ]; then pass "dig $name $type ($kind)"; else fail "dig $name $type ($kind)" "$why"; fi
done < <(dns_all)
check "NXDOMAIN with AD in the signed zone" dns_status nothing-here.signed.stslab A NXDOMAIN ad
check "NXDOMAIN without AD in the unsigned zone" dns_status nothing-here.plain.stslab A NXDOMAIN noad
check "SERVFAIL for the bogus zone's apex" dns_status bogus.stslab SOA SERVFAIL
check "NXDOMAIN outside the lab zones (nothing leaves the lab)" dns_status www.example.com A NXDOMAIN
check "the signed zone's apex has AD" dns_status signed.stslab SOA NOERROR ad

# ---- policy hosts ---------------------------------------------------------------------------
# fetch URL [curl options]: sets code, ctype, size, rc, hdrs, body (file).
body=$(mktemp) hdrs=$(mktemp)
trap 'rm -f "$body" "$hdrs"' EXIT
fetch() {
    local url=$1 w
    shift
    rc=0
    w=$(curl -sS --max-time 10 --cacert "$LAB_CA_BUNDLE" -D "$hdrs" -o "$body" \
        -w '%{http_code} %{content_type} %{size_download}' "${fetch_extra[@]}" "$@" "$url" \
        2>"$body.err") || rc=$?
    read -r code ctype size <<<"$w"
    ctype=${ctype:-none}
    size=${size:-0}
}
policy_url() { printf 'https://mta-sts.%s/.well-known/mta-sts.txt' "$1"; }
fetch_extra=()

policy_check() {
    local d=$1 beh=$2 file="$LAB_WWW/$1/.well-known/mta-sts.txt"
    fetch_extra=()
    if [ "$(zone_kind "$d")" = bogus ] && [ "$beh" != none ]; then
        # The name cannot be resolved (SERVFAIL); the server behind it is checked directly.
        fetch "$(policy_url "$d")"
        [ "$rc" = 6 ] || { echo "bogus zone, but curl resolved the policy host: rc=$rc"; return 1; }
        local addr=$LAB_POLICY_ADDR
        [ "$beh" = refused ] && addr=$LAB_REFUSED_ADDR
        fetch_extra=(--resolve "mta-sts.$d:443:$addr")
    fi
    # The stalling servers would hold curl for its whole --max-time: make that short.
    case "$beh" in
    stall | slowbody) fetch "$(policy_url "$d")" --max-time 2 ;;
    *) fetch "$(policy_url "$d")" ;;
    esac
    local got="rc=$rc code=$code type=$ctype size=$size $(cat "$body.err" 2>/dev/null)"
    case "$beh" in
    ok)
        [ "$rc" = 0 ] && [ "$code" = 200 ] && [[ $ctype == text/plain* ]] && cmp -s "$body" "$file" ||
            { echo "$got"; return 1; }
        ;;
    404 | 500) [ "$rc" = 0 ] && [ "$code" = "$beh" ] || { echo "$got"; return 1; } ;;
    301)
        [ "$rc" = 0 ] && [ "$code" = 301 ] && grep -qi '^location: .*mta-sts-moved.txt' "$hdrs" ||
            { echo "$got"; return 1; }
        # The target serves the policy: only a client that follows redirects gets it.
        fetch "$(policy_url "$d")" -L
        [ "$code" = 200 ] && cmp -s "$body" "$file" || { echo "after -L: code=$code"; return 1; }
        ;;
    type)
        [ "$rc" = 0 ] && [ "$code" = 200 ] && [[ $ctype == text/html* ]] && cmp -s "$body" "$file" ||
            { echo "$got"; return 1; }
        ;;
    biglen)
        [ "$rc" = 0 ] && [ "$code" = 200 ] && [ "$size" -gt 65536 ] &&
            [ "$(sed -n 's/^content-length: *\([0-9]*\).*/\1/Ip' "$hdrs")" -gt 65536 ] ||
            { echo "$got"; cat "$hdrs"; return 1; }
        ;;
    bigchunk)
        [ "$rc" = 0 ] && [ "$code" = 200 ] && [ "$size" -gt 65536 ] &&
            grep -qi '^transfer-encoding: chunked' "$hdrs" && ! grep -qi '^content-length' "$hdrs" ||
            { echo "$got"; cat "$hdrs"; return 1; }
        ;;
    expired | untrusted | wrongname | nochain)
        local want
        case "$beh" in
        expired) want="certificate has expired" ;;
        untrusted | nochain) want="unable to get local issuer certificate" ;;
        wrongname) want="no alternative certificate subject name matches" ;;
        esac
        [ "$rc" = 60 ] && grep -q "$want" "$body.err" || { echo "want curl 60 '$want': $got"; return 1; }
        # The server itself is fine: without verification it serves the policy.
        fetch "$(policy_url "$d")" --insecure
        [ "$code" = 200 ] && cmp -s "$body" "$file" || { echo "with --insecure: code=$code"; return 1; }
        if [ "$beh" = untrusted ]; then
            fetch "$(policy_url "$d")" --cacert "$LAB_UNTRUSTED_CA"
            [ "$code" = 200 ] || { echo "trusting the second CA: rc=$rc code=$code"; return 1; }
        fi
        ;;
    stall | slowbody)
        [ "$rc" = 28 ] || { echo "want curl 28 (timeout): $got"; return 1; }
        if [ "$beh" = stall ]; then
            [ "$size" = 0 ] || { echo "stall sent $size bytes"; return 1; }
        else
            [ "$size" -gt 0 ] || { echo "slowbody sent nothing"; return 1; }
        fi
        ;;
    refused) [ "$rc" = 7 ] || { echo "want curl 7 (refused): $got"; return 1; } ;;
    none) [ "$rc" = 6 ] || { echo "want curl 6 (no such host): $got"; return 1; } ;;
    *) echo "no check for behaviour $beh"; return 1 ;;
    esac
}

echo "# policy hosts (at $((SECONDS - t0)) s)"
pids=()
while read -r _ d beh; do
    case "$beh" in
    stall | slowbody)
        # These take curl's whole --max-time: run them beside the others.
        (check "policy host of $d: $beh" policy_check "$d" "$beh" >"$body.$d") &
        pids+=($!)
        ;;
    *) check "policy host of $d: $beh" policy_check "$d" "$beh" ;;
    esac
done < <(grep '^policy ' "$M")
fetch_extra=()

proxy_check() {
    local d
    d=$(awk '$1 == "policy" && $3 == "ok" { print $2; exit }' "$M")
    fetch "$(policy_url "$d")" --proxy "$LAB_PROXY"
    [ "$rc" = 0 ] && [ "$code" = 200 ] || { echo "rc=$rc code=$code $(cat "$body.err")"; return 1; }
    grep -q "Established connection to host \"mta-sts.$d\"" "$LAB_DIR/web/tinyproxy.log" ||
        { echo "tinyproxy did not log the CONNECT"; return 1; }
}
check "fetch through the proxy $LAB_PROXY" proxy_check

sink_check() {
    local h=$1 before after token="selfcheck-$$-$RANDOM"
    before=$("$LAB_BIN/lab-posts" "$h" --count)
    fetch "https://$h/tlsrpt" -H 'Content-Type: application/tlsrpt+json' --data-binary "{\"t\":\"$token\"}"
    [ "$rc" = 0 ] && [ "$code" = 200 ] || { echo "POST: rc=$rc code=$code"; return 1; }
    after=$("$LAB_BIN/lab-posts" "$h" --count)
    [ "$after" = $((before + 1)) ] || { echo "$before bodies before, $after after"; return 1; }
    grep -q "$token" "$("$LAB_BIN/lab-posts" "$h" | tail -n 1)" || { echo "body not stored"; return 1; }
    fetch "https://$h/tlsrpt"
    [ "$code" = 405 ] || { echo "GET: $code"; return 1; }
}
while read -r _ h; do
    check "HTTPS sink $h stores POSTed bodies" sink_check "$h"
done < <(grep '^sink ' "$M")
check "a name no policy host has gets no policy (421)" \
    bash -c "[ \"\$(curl -s -k -o /dev/null -w '%{http_code}' --resolve x.plain.stslab:443:$LAB_POLICY_ADDR https://x.plain.stslab/.well-known/mta-sts.txt)\" = 421 ]"

# ---- receivers: certificates ----------------------------------------------------------------
# s_client ADDR NAME [options]: sets sout, src (exit status), vcode (verify return code).
s_client() {
    local addr=$1 name=$2
    shift 2
    src=0
    sout=$(echo QUIT | timeout 10 openssl s_client -starttls smtp -connect "$addr:25" \
        -servername "$name" -CAfile "$LAB_CA_BUNDLE" -verify_hostname "$name" -showcerts "$@" 2>&1) ||
        src=$?
    vcode=$(sed -n 's/^ *Verify return code: \([0-9]*\).*/\1/p' <<<"$sout" | tail -n 1)
}
first_name() { [ -r "$LAB_DIR/pki/names/$1.$2" ] && sort -u "$LAB_DIR/pki/names/$1.$2" | head -n 1; }
ehlo_has_starttls() {
    local out
    out=$(swaks --server "$1" --quit-after EHLO --helo client.stslab --timeout 10 2>&1) || true
    grep -q '250.STARTTLS' <<<"$out"
}

receiver_cert_check() {
    local r=$1 addr=$2 cert=$3 names=$4 mx dom fp want_fp nchain
    mx=$(first_name "$r" mx) || mx=""
    dom=$(first_name "$r" domain) || dom=""
    local name=${mx:-${dom:-$r.recv.stslab}}
    [ "$names" = domain ] && name=${dom:-$name}
    ehlo_has_starttls "$addr" || { echo "EHLO does not offer STARTTLS"; return 1; }
    s_client "$addr" "$name"
    fp=$(openssl x509 -noout -fingerprint -sha256 <<<"$sout" 2>/dev/null) || fp=""
    want_fp=$(openssl x509 -noout -fingerprint -sha256 -in "$LAB_DIR/pki/recv-$r.crt")
    [ -n "$fp" ] && [ "$fp" = "$want_fp" ] || { echo "not its certificate: $fp"; return 1; }
    nchain=$(grep -c 'BEGIN CERTIFICATE' <<<"$sout")
    local want_chain=1 want_code
    case "$cert" in inter | expired) want_chain=2 ;; esac
    [ "$nchain" = "$want_chain" ] || { echo "chain of $nchain, want $want_chain"; return 1; }
    case "$cert" in
    inter) want_code=0 ;;
    expired) want_code=10 ;;
    untrusted | nochain) want_code=2[01] ;;
    self) want_code=18 ;;
    esac
    case "$names" in =*) want_code=62 ;; esac
    [[ $vcode == $want_code ]] || { echo "verify code $vcode, want $want_code for $name"; return 1; }
    # Which names the certificate answers to.
    if [ "$cert" = inter ]; then
        case "$names" in
        mx)
            [ -z "$dom" ] || { s_client "$addr" "$dom"; [ "$vcode" = 62 ] || { echo "domain $dom verifies: $vcode"; return 1; }; }
            ;;
        domain)
            [ -z "$mx" ] || { s_client "$addr" "$mx"; [ "$vcode" = 62 ] || { echo "MX $mx verifies: $vcode"; return 1; }; }
            ;;
        mx,domain)
            [ -z "$dom" ] || { s_client "$addr" "$dom"; [ "$vcode" = 0 ] || { echo "domain $dom: $vcode"; return 1; }; }
            ;;
        =*)
            s_client "$addr" "${names#=}"
            [ "$vcode" = 0 ] || { echo "${names#=}: $vcode"; return 1; }
            ;;
        esac
    fi
}

# greets_on ADDR: an SMTP server on ADDR port 25 answers 220 (bash's /dev/tcp speaks IPv6, swaks
# would need IO::Socket::INET6).
greets_on() {
    local line
    exec 3<>"/dev/tcp/$1/25" || return 1
    read -r -t 10 line <&3
    printf 'QUIT\r\n' >&3
    exec 3<&-
    [[ $line == "220 "* ]] || { echo "got: $line"; return 1; }
}

echo "# receivers: STARTTLS and certificates (at $((SECONDS - t0)) s)"
while read -r r addr cert names tls reply ports; do
    case "$tls" in
    starttls) check "receiver $r ($addr): certificate $cert/$names" receiver_cert_check "$r" "$addr" "$cert" "$names" ;;
    none)
        check "receiver $r ($addr): no STARTTLS in EHLO" bash -c "! swaks --server $addr --quit-after EHLO --helo client.stslab 2>&1 | grep -q STARTTLS"
        check "receiver $r: s_client finds no STARTTLS" bash -c \
            "echo QUIT | timeout 10 openssl s_client -starttls smtp -connect $addr:25 2>&1 | grep -q \"Didn't find STARTTLS\""
        ;;
    strip)
        strip_check() {
            local addr=$1 upstream=$2 line
            ehlo_has_starttls "$(lab_receiver_field "$upstream" 2)" || { echo "upstream offers no STARTTLS"; return 1; }
            ! ehlo_has_starttls "$addr" || { echo "STARTTLS not stripped from EHLO"; return 1; }
            # A client that sends STARTTLS anyway gets 454 from the relay.
            exec 3<>"/dev/tcp/$addr/25"
            read -r -t 10 line <&3
            printf 'EHLO client.stslab\r\n' >&3
            while read -r -t 10 line <&3 && [[ $line == 250-* ]]; do :; done
            printf 'STARTTLS\r\n' >&3
            read -r -t 10 line <&3
            printf 'QUIT\r\n' >&3
            exec 3<&-
            [[ $line == "454 "* ]] || { echo "STARTTLS got: $line"; return 1; }
        }
        check "relay $r ($addr): STARTTLS stripped from EHLO, refused when sent" strip_check "$addr" "$names"
        ;;
    old)
        old_check() {
            ehlo_has_starttls "$1" || { echo "EHLO does not offer STARTTLS"; return 1; }
            s_client "$1" x -min_protocol TLSv1.2
            [ "$src" != 0 ] && grep -q 'Cipher is (NONE)' <<<"$sout" || { echo "TLS 1.2 handshake did not fail"; echo "$sout" | tail -n 5; return 1; }
            s_client "$1" x
            [ "$src" != 0 ] || { echo "default handshake did not fail"; return 1; }
        }
        check "receiver $r ($addr): STARTTLS offered, the handshake fails" old_check "$addr"
        ;;
    esac
    # Every Postfix receiver listens on its IPv6 address too.
    if [ "$tls" != strip ]; then
        v6=$(lab_v6_of "$addr")
        check "receiver $r greets on IPv6 ($v6)" greets_on "$v6"
    fi
done < <(lab_receivers)

# ---- receivers: delivery ----------------------------------------------------------------------
echo "# receivers: delivery (at $((SECONDS - t0)) s)"
run_id=$(date +%s)-$$
declare -A sent
while read -r r addr cert names tls reply ports; do
    rcpt="selfcheck-$run_id@$r.plain.stslab"
    tlsopt=(--tls)
    [ "$tls" = starttls ] || tlsopt=()
    out=$(swaks --server "$addr" --to "$rcpt" --from selfcheck@client.stslab --helo client.stslab \
        --timeout 10 "${tlsopt[@]}" 2>&1) && src=0 || src=$?
    case "$reply" in
    accept | slow)
        if [ "$src" = 0 ]; then
            pass "receiver $r accepts (swaks ${tlsopt[*]:-plain})"
            # A stripping relay's mail lands at its upstream receiver, in the clear.
            if [ "$tls" = strip ]; then sent[$rcpt]="$names none"; else sent[$rcpt]="$r $tls"; fi
        else fail "receiver $r accepts (swaks ${tlsopt[*]:-plain})" "$(tail -n 5 <<<"$out")"; fi
        ;;
    tempfail | permfail)
        want="451 4.3.0"
        [ "$reply" = permfail ] && want="550 5.1.1"
        if [ "$src" != 0 ] && grep -q "<[*~]\* *$want" <<<"$out"; then pass "receiver $r answers $want"
        else fail "receiver $r answers $want" "$(tail -n 5 <<<"$out")"; fi
        ;;
    esac
    if [ "$tls" = old ]; then
        out=$(swaks --server "$addr" --to "x-$rcpt" --tls --timeout 10 2>&1) && src=0 || src=$?
        if [ "$src" != 0 ]; then pass "receiver $r: swaks --tls fails"; else fail "receiver $r: swaks --tls fails" "$out"; fi
    fi
    if [ "$ports" != - ]; then
        for p in ${ports//,/ }; do
            rcpt2="selfcheck-$run_id-port$p@$r.plain.stslab"
            if swaks --server "$addr" --port "$p" --to "$rcpt2" --timeout 10 >/dev/null 2>&1; then
                pass "receiver $r accepts on port $p"; sent[$rcpt2]="$r none"
            else fail "receiver $r accepts on port $p"; fi
        done
    fi
done < <(lab_receivers)

stored_check() {
    local r=$1 rcpt=$2 tls=$3 f
    "$LAB_BIN/lab-wait" "$r" 1 --to "$rcpt" --timeout 20 >/dev/null || return 1
    f=$("$LAB_BIN/lab-messages" "$r" --to "$rcpt" | head -n 1)
    grep -q "by $r.recv.stslab" "$f" || { echo "no Received header of $r.recv.stslab"; return 1; }
    if [ "$tls" = starttls ]; then
        grep -q '(using TLSv1.[23] ' "$f" || { echo "not received over TLS"; sed '/^$/q' "$f"; return 1; }
    else
        ! grep -q '(using TLS' "$f" || { echo "received over TLS"; return 1; }
    fi
}
for rcpt in "${!sent[@]}"; do
    read -r r tls <<<"${sent[$rcpt]}"
    check "receiver $r stored the message to $rcpt" stored_check "$r" "$rcpt" "$tls"
done
check "lab-wait times out when the count is not reached" bash -c "! '$LAB_BIN/lab-wait' valid 1 --to nobody-$run_id@x --timeout 1 2>/dev/null"

# ---- the mock DNS responder ------------------------------------------------------------------
echo "# mock DNS responder (fakedns.py) (at $((SECONDS - t0)) s)"
fake() { dig +dnssec +noall +comments +answer +tries=1 +time=2 @"$LAB_FAKEDNS" "$@" 2>&1; }
check "mock: forged AD on an unsigned answer" bash -c "$(declare -f fake); LAB_FAKEDNS=$LAB_FAKEDNS; fake forged-ad.fake.stslab MX | grep -q 'flags:.* ad;'"
check "mock: plain answers without AD" bash -c "$(declare -f fake); LAB_FAKEDNS=$LAB_FAKEDNS; o=\$(fake plain.fake.stslab MX); grep -q 'IN.MX.10 mx.plain.fake.stslab' <<<\"\$o\" && ! grep -q 'flags:.* ad;' <<<\"\$o\""
check "mock: UDP reply truncated (TC), TCP answers" bash -c "dig +ignore +noall +comments +tries=1 @$LAB_FAKEDNS truncated.fake.stslab MX | grep -q 'flags:.* tc' && dig +tcp +short @$LAB_FAKEDNS truncated.fake.stslab MX | grep -q mx.truncated"
check "mock: no reply ever" bash -c "dig +tries=1 +time=1 @$LAB_FAKEDNS silent.fake.stslab MX | grep -q 'timed out'"
check "mock: malformed TLSA" bash -c "dig +tries=1 +time=2 @$LAB_FAKEDNS _25._tcp.mx.badtlsa.fake.stslab TLSA 2>&1 | grep -q 'malformed'"

for pid in "${pids[@]}"; do wait "$pid" || true; done
for f in "$body".*; do
    [ -e "$f" ] && [ "$f" != "$body.err" ] || continue
    cat "$f"
    total=$((total + 1))
    grep -q '^not ok' "$f" && failed=$((failed + 1))
    rm -f "$f"
done
rm -f "$body.err"

echo "# $total checks, $failed failed, $((SECONDS - t0)) s"
[ "$failed" = 0 ]
