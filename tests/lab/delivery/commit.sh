#!/usr/bin/env bash
# commit.sh - a commit while mail waits (delivery-policy.md §1.3): a recipient deferred under
# TLS Required (no STARTTLS) is delivered in the clear at its next attempt once Preferred is
# committed, without restarting the agent.
PORT=2606
. "$(dirname "$0")/lib.sh"

rcpt="c-$TAG@notls.plain.stslab"
{
    ca_script
    bounce_script soon 100 3600 2 2 y
    dest_script new notls.plain.stslab 3 2
} | configure "Required"
start_agent
send "$rcpt"
mid=$(mid_of "$rcpt")
expect_log "Delayed: DCID [0-9]+ MID $mid to RID 0 - 4\.7\.4 - TLS required"
[ "$("$BIN/lab-messages" notls --to "$rcpt" --count)" = 0 ] || fail "delivered under Required"
dest_script edit notls.plain.stslab 2 2 | configure_live "Preferred"
"$BIN/lab-wait" notls 1 --to "$rcpt" --timeout 30 >/dev/null || fail "not delivered after the commit"
expect_log "Message done DCID [0-9]+ MID $mid to RID \[0\]"
dcid=$(dcid_of_mid "$mid")
expect_log "DCID $dcid STARTTLS not offered by mx\.notls\.plain\.stslab; delivering in the clear \(Preferred\)"
finish
