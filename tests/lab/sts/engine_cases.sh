#!/usr/bin/env bash
# engine_cases.sh: the engine's discovery rules against the lab's real DNS (the TXT scenarios of
# docs/testing.md), and a second process over the same stscache.db (a restart): the cached policy
# is found and applied without a fetch. Runs inside the lab namespace.
set -euo pipefail
. "$LAB_ENV"
probe="$STSGATE_BIN/sts_probe"
tmp=$(mktemp -d /tmp/sts-engine-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
run() { "$probe" --data "$tmp" --ca "$LAB_CA_BUNDLE" lookup "$1"; }

# domain  decision  fetch expected (1/0)  cache expectation (grep on the cache line)
while read -r name decision fetch cache; do
    d="$name.plain.stslab"
    out=$(run "$d")
    echo "$out"
    grep -qx "decision: $decision" <<<"$out" || fail "$d: decision, want $decision"
    if [ "$fetch" = 1 ]; then
        grep -qxF "log: Debug: Fetch MTA-STS policy for the domain($d)" <<<"$out" || fail "$d: no fetch"
    else
        ! grep -q "Fetch MTA-STS policy" <<<"$out" || fail "$d: a fetch despite the TXT record"
    fi
    grep -q "^cache: $cache" <<<"$out" || fail "$d: cache, want $cache"
done <<'CASES'
sts-splittxt enforce 1 present policy=1 id=split1 mode=enforce
sts-othertxt enforce 1 present policy=1 id=[A-Za-z0-9]* mode=enforce
sts-testing testing 1 present policy=1 id=[A-Za-z0-9]* mode=testing
sts-wildcard enforce 1 present policy=1 id=[A-Za-z0-9]* mode=enforce
sts-twotxt no-policy 0 absent
sts-badid no-policy 0 absent
sts-notxt no-policy 0 absent
sts-noversion no-policy 1 present policy=0 id= mode=none
CASES

# The split record was joined with no separator: id=split1, and the invalid records were named.
out=$(run sts-badid.plain.stslab)
grep -q "log: Info: Invalid MTA-STS TXT record for domain(sts-badid.plain.stslab): " <<<"$out" ||
    fail "no invalid-record line"

# A restart: the policy fetched above is applied from stscache.db, after the TXT check, unfetched.
for d in sts-splittxt.plain.stslab sts-testing.plain.stslab; do
    before=$("$probe" --data "$tmp" cache "$d")
    out=$(run "$d")
    echo "$out"
    grep -qxF "log: Debug: Valid cache entry found for the domain ($d)." <<<"$out" || fail "$d: no cache hit"
    ! grep -q "Fetch MTA-STS policy" <<<"$out" || fail "$d: fetched again"
    grep -qxF "log: Info: Applying MTA-STS policy for the domain ($d)" <<<"$out" || fail "$d: not applied"
    [ "$before" = "$(grep '^cache:' <<<"$out")" ] || fail "$d: the entry changed on a cache hit"
done
# The wildcard policy matches one label more, not two.
out=$(run sts-wildcard.plain.stslab)
grep -qx "mx: \*.sts-wildcard.plain.stslab" <<<"$out" || fail "wildcard pattern"
echo "PASS"
