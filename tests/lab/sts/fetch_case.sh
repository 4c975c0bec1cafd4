#!/usr/bin/env bash
# fetch_case.sh DOMAIN STATUS [--timeout S] [--proxy]: one policy-host behaviour of the lab.
#   1. sts_probe fetch: the fetch alone must end with STATUS and the exact reason for DOMAIN;
#   2. sts_probe lookup on an empty cache: the decision, the mail_logs lines, the cache row
#      (a policy stored after a good fetch; after a failed one no policy, the failed id kept);
#   3. sts_probe lookup on a cache seeded with an older enforce policy (id "seed"): a good fetch
#      replaces it, a failed one leaves it in use and unchanged, with the Warning line.
# Runs inside the lab namespace (stsgate_lab_test INSIDE).
set -euo pipefail
. "$LAB_ENV"
domain=${1:?DOMAIN}
want=${2:?STATUS}
want=${want^^} # given in lower case by CMake
shift 2
opts=(--ca "$LAB_CA_BUNDLE")
proxy=0
timeout=60
while [ $# -gt 0 ]; do
    case $1 in
    --timeout) opts+=(--timeout "$2"); timeout=$2; shift 2 ;;
    --proxy) opts+=(--proxy "$LAB_PROXY"); proxy=1; shift ;;
    *) echo "unknown option $1"; exit 2 ;;
    esac
done
probe="$STSGATE_BIN/sts_probe"
tmp=$(mktemp -d /tmp/sts-fetch-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
host="mta-sts.$domain"

# The exact reason each failing behaviour must give (after "failed due to").
case "$domain" in
sts-404.*) reason="HTTP status 404" ;;
sts-301.*) reason="HTTP status 301 (redirects are not followed)" ;;
sts-500.*) reason="HTTP status 500" ;;
sts-type.*) reason="Content-Type text/html (text/plain is required)" ;;
sts-biglen.* | sts-bigchunk.*) reason="a policy larger than 65536 bytes" ;;
sts-expired.*) reason="a certificate error: certificate has expired" ;;
sts-untrusted.*) reason="a certificate error: unable to get local issuer certificate" ;;
sts-nochain.*) reason="a certificate error: unable to get local issuer certificate" ;;
sts-wrongname.*) reason="a certificate error: no alternative certificate subject name matches target host name '$host'" ;;
sts-stall.* | sts-slowbody.*) reason="a timeout (no complete answer within $timeout s)" ;;
sts-refused.*) reason="a refused connection ($LAB_REFUSED_ADDR port 443)" ;;
sts-nxdomain.*) reason="an unknown policy host ($host: NXDOMAIN)" ;;
sts-malformed.*) reason="an invalid policy (" ;;
*) reason="" ;;
esac

# 1. the fetch alone
start=$(date +%s.%N)
out=$("$probe" --data "$tmp" "${opts[@]}" fetch "$domain")
end=$(date +%s.%N)
echo "$out"
grep -q "^fetch: $want " <<<"$out" || fail "fetch status, want $want"
if [ "$want" != OK ]; then
    grep -qxF "reason: $reason" <<<"$out" || fail "fetch reason, want: $reason"
else
    grep -q "type=text/plain" <<<"$out" || fail "want text/plain"
fi
if [ "$want" = TIMEOUT ]; then
    # the limit holds: not much before, not much after
    awk -v s="$start" -v e="$end" -v t="$timeout" 'BEGIN { d = e - s; exit !(d >= t - 0.5 && d < t + 3) }' ||
        fail "the timeout of $timeout s took $(awk -v s="$start" -v e="$end" 'BEGIN { print e - s }') s"
fi

policy_ok=0
[ "$want" = OK ] && [ "${domain%%.*}" != sts-malformed ] && policy_ok=1

# 2. the engine on an empty cache
out=$("$probe" --data "$tmp" "${opts[@]}" lookup "$domain")
echo "$out"
grep -qxF "log: Debug: DNS query: Q(_mta-sts.$domain, 'TXT')" <<<"$out" || fail "no TXT query line"
grep -qxF "log: Info: Successfully fetched MTA-STS TXT record for domain($domain)" <<<"$out" ||
    fail "no TXT success line"
grep -qxF "log: Debug: Fetch MTA-STS policy for the domain($domain)" <<<"$out" || fail "no fetch line"
if [ "$proxy" = 1 ]; then
    grep -qxF "log: Debug: Requesting MTA-STS policy fetch via proxy" <<<"$out" || fail "no proxy line"
else
    ! grep -q "via proxy" <<<"$out" || fail "a proxy line without a proxy"
fi
if [ "$policy_ok" = 1 ]; then
    mode=$(sed -n 's/^log: Debug: Fetched MTA-STS policy .* mode \([a-z]*\),.*/\1/p' <<<"$out")
    [ -n "$mode" ] || fail "no fetched line"
    grep -qx "decision: $mode" <<<"$out" || fail "decision, want $mode"
    id=$(sed -n 's/^log: Debug: Fetched MTA-STS policy .*: id \([A-Za-z0-9]*\),.*/\1/p' <<<"$out")
    grep -q "^cache: present policy=1 id=$id mode=$mode .* max_age=86400 failed_id=$" <<<"$out" ||
        fail "cache row after a good fetch"
    if [ "$mode" != none ]; then
        grep -qxF "log: Info: Applying MTA-STS policy for the domain ($domain)" <<<"$out" ||
            fail "no Applying line"
    fi
else
    grep -qxF "log: Debug: STS policy fetch request failed due to $reason., for the domain $domain" <<<"$out" ||
        grep -qF "log: Debug: STS policy fetch request failed due to $reason" <<<"$out" ||
        fail "no failure line with: $reason"
    grep -qxF "log: Info: Failed to fetch MTA-STS policy for the domain ($domain)" <<<"$out" ||
        fail "no Failed to fetch line"
    grep -qx "decision: no-policy" <<<"$out" || fail "decision, want no-policy"
    grep -q "^cache: present policy=0 id= mode=none .* failed_id=[A-Za-z0-9]\+$" <<<"$out" ||
        fail "cache row after a failed fetch: no policy, the failed id"
    ! grep -q "Applying" <<<"$out" || fail "Applying without a policy"
fi
if [ "$proxy" = 1 ]; then
    "$LAB_BIN/lab-log" tinyproxy | grep -q "$host" || fail "tinyproxy did not see $host"
fi

# 3. the engine on a cache holding an older policy
rm -rf "$tmp"/*
"$probe" --data "$tmp" seed "$domain" >/dev/null
before=$("$probe" --data "$tmp" cache "$domain")
out=$("$probe" --data "$tmp" "${opts[@]}" lookup "$domain")
echo "$out"
after=$(grep '^cache:' <<<"$out")
if [ "$policy_ok" = 1 ]; then
    grep -q "^cache: present policy=1 id=$id " <<<"$after" || fail "the seeded policy was not replaced"
else
    grep -qx "decision: enforce" <<<"$out" || fail "the cached policy must apply"
    grep -qxF "why: policy fetch failed; the cached policy applies" <<<"$out" || fail "why"
    # the policy itself unchanged: same id, mode, fetched_at, max_age; only the failure recorded
    [ "${before% failed_id=*}" = "${after% failed_id=*}" ] || fail "cached policy changed: $before -> $after"
    grep -q "failed_id=[A-Za-z0-9]\+$" <<<"$after" || fail "the failure was not recorded"
    grep -qF "log: Warning: Failed to refresh MTA-STS policy for the domain ($domain): the fetch failed due to $reason" <<<"$out" ||
        fail "no Warning line"
    grep -qxF "log: Info: Applying MTA-STS policy for the domain ($domain)" <<<"$out" || fail "no Applying line"
fi
echo "PASS: $domain ($want)"
