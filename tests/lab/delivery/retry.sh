#!/usr/bin/env bash
# retry.sh - a 4xx receiver: the recipient is deferred with the receiver's reply, retried on the
# bounce profile's schedule (initial 1 s, doubling, at most 2 s), and delivered once the receiver
# accepts (lab-receiver tempfail reply accept). Restores the receiver.
PORT=2603
. "$(dirname "$0")/lib.sh"
restore() { "$BIN/lab-receiver" tempfail reply tempfail >/dev/null 2>&1 || true; }
trap 'restore; cleanup' EXIT

rcpt="r-$TAG@tempfail.plain.stslab"
{
    ca_script
    bounce_script fast 100 3600 1 2 y
    dest_script new tempfail.plain.stslab 5 2
} | configure "fast retries"
start_agent
send "$rcpt"
mid=$(mid_of "$rcpt")
expect_log "Delayed: DCID [0-9]+ MID $mid to RID 0 - 4\.3\.0 - Temporary failure \('451', \['4\.3\.0 "
# a second deferral proves the retry schedule runs
expect_log "Delayed: DCID [0-9]+ MID $mid to RID 0 - 4\.3\.0 .*" 10
n=$(grep -c "Delayed: DCID [0-9]* MID $mid to RID 0 - 4.3.0" "$LOG" || true)
[ "$n" -ge 1 ] || fail "not deferred"
wait_log "Delayed: DCID [0-9]+ MID $mid .*" 10
for _ in $(seq 1 100); do
    [ "$(grep -c "Delayed: DCID [0-9]* MID $mid " "$LOG")" -ge 2 ] && break
    sleep 0.1
done
[ "$(grep -c "Delayed: DCID [0-9]* MID $mid " "$LOG")" -ge 2 ] || fail "no retry within 10 s"
"$BIN/lab-receiver" tempfail reply accept >/dev/null
"$BIN/lab-wait" tempfail 1 --to "$rcpt" --timeout 30 >/dev/null || fail "not delivered after the receiver accepted"
expect_log "Message done DCID [0-9]+ MID $mid to RID \[0\]"
expect_log "Message finished MID $mid done"
no_log "Bounced: .* MID $mid "
finish
