#!/usr/bin/env bash
# bounce.sh - hard bounces: a 5xx receiver's 550 bounces the recipient and a DSN (RFC 3464,
# multipart/report) goes from the null sender to the sender; a null MX bounces with 5.1.10 and a
# DSN; two refused recipients of one message share one DSN; a message from the null sender
# bounces without a DSN.
PORT=2604
. "$(dirname "$0")/lib.sh"

sender="s-$TAG@valid.plain.stslab"
r1="p-$TAG@permfail.plain.stslab"
r2="n-$TAG@nullmx.plain.stslab"
r3="z-$TAG@permfail.plain.stslab"
sender2="t-$TAG@valid.plain.stslab"
r4="x-$TAG@permfail.plain.stslab"
r5="y-$TAG@permfail.plain.stslab"
ca_script | configure "CA"
start_agent
send "$r1" --from "$sender"
send "$r2" --from "$sender"
send "$r3" --from "<>"
send "$r4,$r5" --from "$sender2"
mid1=$(mid_of "$r1")
mid2=$(mid_of "$r2")
mid3=$(mid_of "$r3")
expect_log "Bounced: DCID [0-9]+ MID $mid1 to RID 0 - 5\.1\.1 - Bad destination mailbox address \('550', \['5\.1\.1 "
expect_log "MID [0-9]+ DSN bounce message created for MID $mid1\$"
expect_log "Bounced: DCID 0 MID $mid2 to RID 0 - 5\.1\.10 - Bad destination host \('000', \['DNS Hard Error looking up nullmx\.plain\.stslab \(MX\): "
expect_log "MID [0-9]+ DSN bounce message created for MID $mid2\$"
expect_log "Bounced: DCID [0-9]+ MID $mid3 to RID 0 - 5\.1\.1 "
"$BIN/lab-wait" valid 2 --to "$sender" --timeout 30 >/dev/null || fail "the two DSNs did not reach the sender"
for f in $("$BIN/lab-messages" valid --to "$sender"); do
    grep -q "^Return-Path: <>" "$f" || fail "DSN not from the null sender"
    grep -q "^Content-Type: multipart/report; report-type=delivery-status;" "$f" || fail "DSN not multipart/report"
    grep -q "^Content-Type: message/delivery-status" "$f" || fail "no message/delivery-status part"
    grep -q "^Reporting-MTA: dns; " "$f" || fail "no Reporting-MTA"
    grep -q "^Action: failed" "$f" || fail "no Action: failed"
    grep -q "^Content-Type: text/rfc822-headers" "$f" || fail "no original headers part"
done
grep -lq "^Final-Recipient: rfc822; $r1" $("$BIN/lab-messages" valid --to "$sender") || fail "no DSN names $r1"
grep -q "^Status: 5\.1\.1" $("$BIN/lab-messages" valid --to "$sender") || fail "no Status: 5.1.1"
grep -q "^Status: 5\.1\.10" $("$BIN/lab-messages" valid --to "$sender") || fail "no Status: 5.1.10"
mid4=$(mid_of "$r4")
expect_log "Bounced: DCID [0-9]+ MID $mid4 to RID 1 - 5\.1\.1 "
"$BIN/lab-wait" valid 1 --to "$sender2" --timeout 30 >/dev/null || fail "no DSN for the two-recipient message"
f=$("$BIN/lab-messages" valid --to "$sender2" | head -n 1)
if [ -n "$f" ]; then
    grep -q "^Final-Recipient: rfc822; $r4" "$f" || fail "the DSN does not name $r4"
    grep -q "^Final-Recipient: rfc822; $r5" "$f" || fail "the DSN does not name $r5"
    grep -q "^Diagnostic-Code: smtp; 550 5\.1\.1 " "$f" || fail "no Diagnostic-Code with the server's reply"
fi
[ "$(grep -c "DSN bounce message created for MID $mid4\$" "$LOG")" = 1 ] || fail "not exactly one DSN for MID $mid4"
sleep 2
no_log "DSN bounce message created for MID $mid3\$"
finish
