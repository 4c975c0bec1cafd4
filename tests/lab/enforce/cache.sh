#!/usr/bin/env bash
# cache.sh - MTA-STS policies over time in delivery (mta-sts.md "Cache and refresh", issue 7):
# fetched through the SETUP proxy, then kept applying when the TXT id changes while the policy
# host is down, and when the TXT record disappears; one flight for many messages of a domain.
# The domain is sts-nomatch.plain.stslab (enforce, no MX matches), so a policy that applies is
# seen at once: the mail is deferred with the MTA-STS line. Its TXT record and policy file are
# changed here and restored at the end (RESOURCE_LOCK lab:sts-nomatch.plain.stslab). The agent is
# restarted between steps on the same data directory: the cache lives in <data>/stscache.db, and
# a fresh process asks DNS again (a running one trusts a TXT answer for a minute).
PORT=2612
. "$(dirname "$0")/lib.sh"

D=sts-nomatch.plain.stslab
TXT="_mta-sts.$D"
POLICY="$LAB_WWW/$D/.well-known/mta-sts.txt"
NOMATCH="Delayed: DCID 0 MID @MID@ to RID 0 - 4\.7\.5 - MTA-STS \('000', \['no MX host of @D@ matches its policy'\]\)"

# The shell takes a proxy by name (it refuses "http://127.0.80.1:3128"): the lab proxy gets one
# for this test, resolved through the agent's resolvers like any proxy name.
PROXY_NAME=proxy-enforce.plain.stslab

restore() {
    [ -f "$ROOT/policy.saved" ] && cp "$ROOT/policy.saved" "$POLICY"
    "$BIN/lab-dns" set "$TXT" TXT '"v=STSv1; id=nomatch1"' >/dev/null 2>&1 || true
    "$BIN/lab-dns" del "$PROXY_NAME" A >/dev/null 2>&1 || true
}
trap 'restore; cleanup' EXIT
cp "$POLICY" "$ROOT/policy.saved"
"$BIN/lab-dns" set "$PROXY_NAME" A "$LAB_PROXY_ADDR" >/dev/null

{
    ca_script
    setup_proxy_script "http://$PROXY_NAME:$LAB_PROXY_PORT"
    enf_dest_script new "$D" 2 - 2
    enf_dest_script new sts-enforce.plain.stslab 2 - 2
} | configure "lab CA, proxy, MTA STS On"
grep -q "certificate authorities imported" "$ROOT/shell.out" || { fail "the lab CA was not imported"; exit 1; }
if grep -q "That value is not valid" "$ROOT/shell.out"; then fail "the shell refused a setting"; exit 1; fi

# step NAME: restart the agent, mark the log, send one message to NAME-$TAG@$D.
step() {
    stop_agent
    start_agent
    mark_log
    send "$1-$TAG@$D"
}

# 1. First contact: TXT, fetch through the proxy, enforce applies, cached.
step proxy-fetch
check_scenario proxy-fetch "$D" deferred:valid "Debug: Requesting MTA-STS policy fetch via proxy ;; Fetch MTA-STS policy for the domain\(@D@\) ;; Applying MTA-STS policy for the domain \(@D@\) ;; $NOMATCH"
"$BIN/lab-log" tinyproxy 2>/dev/null | grep -q "mta-sts\.$D" || fail "proxy-fetch: tinyproxy did not carry the fetch"

# 2. Same id, new process: the stored policy is used without a fetch.
step cache-hit
check_scenario cache-hit "$D" deferred:valid "Valid cache entry found for the domain \(@D@\)\. ;; !Fetch MTA-STS policy for the domain\(@D@\) ;; $NOMATCH"

# 3. The id changes while the policy host fails (404): the cached policy still applies.
mv "$POLICY" "$ROOT/policy.moved"
"$BIN/lab-dns" set "$TXT" TXT '"v=STSv1; id=nomatch9"' >/dev/null
step id-change-host-down
check_scenario id-change-host-down "$D" deferred:valid "Fetch MTA-STS policy for the domain\(@D@\) ;; Failed to fetch MTA-STS policy for the domain \(@D@\) ;; Applying MTA-STS policy for the domain \(@D@\) ;; $NOMATCH"
mv "$ROOT/policy.moved" "$POLICY"

# 4. The TXT record disappears: the unexpired cached policy still applies.
"$BIN/lab-dns" del "$TXT" TXT >/dev/null
step txt-gone
check_scenario txt-gone "$D" deferred:valid "Applying MTA-STS policy for the domain \(@D@\) ;; !Fetch MTA-STS policy for the domain\(@D@\) ;; $NOMATCH"

# 5. Single flight: five messages for one domain at once, one TXT lookup and one fetch.
stop_agent
start_agent
mark_log
for i in 1 2 3 4 5; do send "flight$i-$TAG@sts-enforce.plain.stslab"; done
for i in 1 2 3 4 5; do
    check_scenario "flight$i" sts-enforce.plain.stslab valid+tls "MTA-STS policy for the domain \(@D@\) Successful\."
done
n=$(new_lines | grep -c "Fetch MTA-STS policy for the domain(sts-enforce.plain.stslab)" || true)
m=$(new_lines | grep -c "Successfully fetched MTA-STS TXT record for domain(sts-enforce.plain.stslab)" || true)
[ "$n" -le 1 ] && [ "$m" = 1 ] || fail "single flight: $m TXT lookups and $n fetches for five messages"

echo "$SCENARIOS_CHECKED scenarios checked"
enf_finish
