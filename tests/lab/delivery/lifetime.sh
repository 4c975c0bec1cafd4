#!/usr/bin/env bash
# lifetime.sh - the queue lifetime: a recipient that keeps failing (TLS Required against a
# receiver without STARTTLS: 4.7.4) under a profile with a 3 s queue lifetime is retried, then
# bounced as expired (5.4.7) with a DSN to the sender. TLS failures alone never bounce (§2): only
# the lifetime does.
PORT=2605
. "$(dirname "$0")/lib.sh"

sender="l-$TAG@valid.plain.stslab"
rcpt="e-$TAG@notls.plain.stslab"
{
    ca_script
    bounce_script short 100 3 1 1 y
    dest_script new notls.plain.stslab 3 2
} | configure "short lifetime"
start_agent
send "$rcpt" --from "$sender"
mid=$(mid_of "$rcpt")
expect_log "Delayed: DCID [0-9]+ MID $mid to RID 0 - 4\.7\.4 - TLS required \('000', \['STARTTLS not offered by mx\.notls\.plain\.stslab'\]\)"
expect_log "Bounced: DCID [0-9]+ MID $mid to RID 0 - 5\.4\.7 - Delivery expired \(message too old\) \('000', \['4\.7\.4 STARTTLS not offered by mx\.notls\.plain\.stslab'\]\)" 20
expect_log "MID [0-9]+ DSN bounce message created for MID $mid\$"
"$BIN/lab-wait" valid 1 --to "$sender" --timeout 30 >/dev/null || fail "no DSN for the expired message"
f=$("$BIN/lab-messages" valid --to "$sender" | head -n 1)
[ -n "$f" ] && { grep -q "^Status: 5\.4\.7" "$f" || fail "DSN without Status: 5.4.7"; }
[ "$("$BIN/lab-messages" notls --to "$rcpt" --count)" = 0 ] || fail "delivered in the clear under Required"
finish
