#!/usr/bin/env bash
# hosts.sh - hosts tried in order (delivery-policy.md §2 "host failed"): fallback.plain.stslab
# has MX 10 -> expired, MX 20 -> valid; under Required - Verify the first host fails its check and
# the mail goes to the second, never deferred. With the SETUP alert on, Required options that
# fail on every host log the Critical line (notls: STARTTLS missing; wrongname: name mismatch).
PORT=2607
. "$(dirname "$0")/lib.sh"

{
    ca_script
    printf 'destconfig\nsetup\n1\ny\nn\nn\n\n' # outbound certificate Demo, alert on
    dest_script new fallback.plain.stslab 5
    dest_script new notls.plain.stslab 3
    dest_script new wrongname.plain.stslab 5
} | configure "alert"
start_agent
r1="f-$TAG@fallback.plain.stslab"
r2="a-$TAG@notls.plain.stslab"
r3="w-$TAG@wrongname.plain.stslab"
send "$r1"
send "$r2"
send "$r3"
"$BIN/lab-wait" valid 1 --to "$r1" --timeout 30 >/dev/null || fail "fallback: not delivered to the second MX"
mid1=$(mid_of "$r1")
expect_log "Message done DCID [0-9]+ MID $mid1 to RID \[0\]"
expect_log "New SMTP DCID [0-9]+ interface [0-9.]+ address 127\.0\.25\.6 port 25"
expect_log "TLS deferring: verify error: certificate has expired"
no_log "Delayed: DCID [0-9]+ MID $mid1 "
no_log "Critical: TLS required for fallback"
f=$("$BIN/lab-messages" valid --to "$r1" | head -n 1)
[ -n "$f" ] && { grep -q "(using TLS" "$f" || fail "fallback: not received over TLS"; }
expect_log "Critical: TLS required for notls\.plain\.stslab failed on every host: STARTTLS not offered by mx\.notls\.plain\.stslab\$"
expect_log "Critical: TLS required for wrongname\.plain\.stslab failed on every host: peer cert does not match domain wrongname\.plain\.stslab\$"
finish
