#!/usr/bin/env bash
# tlsrpt_send.sh - TLS reporting end to end (inside the lab namespace).
#
# The real agent, configured through the real shell (the lab CA trusted through certconfig,
# destconfig SETUP with daily TLS reports on, org and contact; MTA STS On for
# tlsrpt.plain.stslab (rua mailto:tlsrpt@reports.plain.stslab) and tlsrpt-https.plain.stslab
# (rua https://reports.plain.stslab/tlsrpt), both under enforce policies, and for
# sts-mx-expired.plain.stslab (no TLS-RPT record)), delivers:
#   - two messages to each report domain (successes);
#   - one to tlsrpt.plain.stslab while mx.tlsrpt.plain.stslab points at the expired receiver
#     (lab-dns): a real failure under enforce, deferred, then delivered after the name is back;
#   - one to sts-mx-expired.plain.stslab (a failure; no report: the domain has no record).
# Then `tlsrpt send <today>` (the agent sends yesterday's reports on its own; the day is a
# parameter). Asserted: the sessions counted (RFC 8460 counts connections, not messages: messages
# that share a connection are one session); the mailto report reaches the lab mailbox and the
# https report the HTTPS sink, each a valid RFC 8460 report (check_report.py) carrying exactly
# the counts of tlsrpt.db; the log lines; a second send of the day sends no report again.
#
# Should the agent not count sessions itself (the delivery side of counting is not in), the test
# says so and writes the counts into tlsrpt.db with sqlite3, so the sending is still tested.
PORT=2591
. "$(dirname "$(readlink -f "$0")")/../delivery/lib.sh"
HERE=$(dirname "$(readlink -f "$0")")
DAY=$(date -u +%F)
HOST="rpt$TAG.example.com"
ORG="Lab Org $TAG"
CONTACT="tlsrpt-$TAG@valid.plain.stslab"
D1=tlsrpt.plain.stslab
D2=tlsrpt-https.plain.stslab
DX=sts-mx-expired.plain.stslab
MX1=mx.$D1
RESTORE_DNS=

restore_dns() {
    if [ -n "$RESTORE_DNS" ]; then
        "$BIN/lab-dns" set "$MX1" A "$LAB_RECV_VALID" >/dev/null || true
        RESTORE_DNS=
    fi
}
trap 'restore_dns; cleanup' EXIT

# entry DOMAIN: TLS Preferred - Verify, MTA STS On.
entry_script() {
    printf 'destconfig\nnew\n%s\n' "$1"
    printf 'n\nn\nn\n'     # concurrency, messages per connection, recipient limit gates
    printf 'y\n4\n'        # TLS: Preferred - Verify
    printf 'n\ny\n2\n'     # DANE gate N; MTA STS gate Y, On
    printf 'n\nn\n\n'      # bounce profile, IP sort gates; leave the menu
}

mkdir -p "$DATA"
{
    printf 'sethostname\n%s\n' "$HOST"
    ca_script
    printf 'destconfig\nsetup\n\n\n\ny\n%s\n%s\n\n' "$ORG" "$CONTACT"
    entry_script $D1
    entry_script $D2
    entry_script $DX
} | configure "tlsrpt lab"
start_agent

# --- deliveries -----------------------------------------------------------------------------
ok1="a-$TAG@$D1" ok2="b-$TAG@$D1" ok3="a-$TAG@$D2" ok4="b-$TAG@$D2"
for r in $ok1 $ok2 $ok3 $ok4; do send "$r" --from "alice-$TAG@valid.plain.stslab"; done
for r in $ok1 $ok2 $ok3 $ok4; do
    "$BIN/lab-wait" valid 1 --to "$r" --timeout 30 >/dev/null || fail "no delivery for $r"
done

# A real failure for a report domain: its MX name now leads to the expired receiver.
RESTORE_DNS=1
"$BIN/lab-dns" set "$MX1" A "$LAB_RECV_EXPIRED" >/dev/null
late="c-$TAG@$D1"
send "$late" --from "alice-$TAG@valid.plain.stslab"
mid=$(mid_of "$late")
expect_log "Delayed: DCID [0-9]+ MID $mid to RID 0 - 4\.7\.5" 60
restore_dns
"$STSGATE_BIN/stsgate" --data "$DATA" -c delivernow >>"$ROOT/shell.out" 2>&1 || true
"$BIN/lab-wait" valid 1 --to "$late" --timeout 60 >/dev/null || fail "no delivery for $late after the MX came back"

xp="x-$TAG@$DX"
send "$xp" --from "alice-$TAG@valid.plain.stslab"
expect_log "Delayed: DCID [0-9]+ MID $(mid_of "$xp") to RID 0 - 4\.7\.5" 60

# --- the counts -----------------------------------------------------------------------------
DB=$DATA/tlsrpt.db
counts() { sqlite3 "$DB" "SELECT result, SUM(count) FROM sessions WHERE day='$DAY' AND domain='$1' GROUP BY result ORDER BY result" | tr '\n' ' '; }
sleep 1
if [ -z "$(counts $D1)" ] || [ -z "$(counts $D2)" ]; then
    echo "NOTE: the agent counted no sessions for $D1 / $D2: the delivery side of counting is not in; writing the counts with sqlite3"
    pol1=$(printf 'version: STSv1\nmode: enforce\nmx: mx.%s\nmax_age: 86400' $D1)
    pol2=$(printf 'version: STSv1\nmode: enforce\nmx: mx.%s\nmax_age: 86400' $D2)
    sqlite3 "$DB" "INSERT INTO sessions VALUES
      ('$DAY','$D1','sts','$pol1','mx.$D1','success','','','','',2),
      ('$DAY','$D1','sts','$pol1','mx.$D1','certificate-expired','127.0.0.1','mx.$D1','$LAB_RECV_EXPIRED','certificate has expired',1),
      ('$DAY','$D2','sts','$pol2','mx.$D2','success','','','','',1)"
    COUNTED=0
else
    COUNTED=1
fi
echo "counts $D1: $(counts $D1)"
echo "counts $D2: $(counts $D2)"
echo "counts $DX: $(counts $DX)"
sum() { sqlite3 "$DB" "SELECT COALESCE(SUM(count),0) FROM sessions WHERE day='$DAY' AND domain='$1' AND $2"; }
ok1n=$(sum $D1 "result='success'") fail1n=$(sum $D1 "result<>'success'")
ok2n=$(sum $D2 "result='success'") fail2n=$(sum $D2 "result<>'success'")
[ "$ok1n" -ge 2 ] || fail "$D1: want at least 2 successful sessions (before and after the failure)"
[ "$fail1n" -ge 1 ] || fail "$D1: the failure was not counted"
[ "$(sum $D1 "result='certificate-expired'")" -ge 1 ] || fail "$D1: want the failure as certificate-expired"
[ "$ok2n" -ge 1 ] || fail "$D2: no successful session counted"
[ "$fail2n" = 0 ] || fail "$D2: want no failure"
if [ "$COUNTED" = 1 ]; then
    [ "$(sum $DX "result<>'success'")" -ge 1 ] || fail "$DX: the failure was not counted"
fi

# --- send today's reports -------------------------------------------------------------------
mail_before=$("$BIN/lab-messages" valid --to tlsrpt@reports.plain.stslab --count)
out=$("$STSGATE_BIN/stsgate" --data "$DATA" -c "tlsrpt send $DAY" 2>&1) || fail "tlsrpt send failed: $out"
echo "$out"
if [ "$COUNTED" = 1 ]; then want="3 TLS reports for $DAY to send: $DX, $D2, $D1;"; else want="2 TLS reports for $DAY to send: $D2, $D1;"; fi
grep -qF "$want mail_logs tells how each went." <<<"$out" || fail "tlsrpt send: want \"$want ...\""
expect_log "Info: TLS report for the domain \($D1\) queued as MID [0-9]+ for <tlsrpt@reports\.plain\.stslab>"
expect_log "Info: TLS report for the domain \($D2\) posted to https://reports\.plain\.stslab/tlsrpt"
[ "$COUNTED" = 1 ] && expect_log "Info: No TLS-RPT record for the domain \($DX\); report not sent"

# The mailto report, as the lab mailbox got it.
"$BIN/lab-wait" valid $((mail_before + 1)) --to tlsrpt@reports.plain.stslab --timeout 60 >/dev/null ||
    fail "the mailto report did not arrive"
report_mail=
for f in $("$BIN/lab-messages" valid --to tlsrpt@reports.plain.stslab); do
    grep -q "^TLS-Report-Submitter: $ORG" "$f" && report_mail=$f
done
if [ -z "$report_mail" ]; then
    fail "no report from $ORG in the mailbox"
else
    res=$(python3 "$HERE/check_report.py" mail "$report_mail" $D1 "$ORG" "$CONTACT" "$DAY") ||
        fail "mailto report: $res"
    echo "$res"
    grep -q "^report ${DAY}_$D1@$HOST: $ok1n successful, $fail1n failed\$" <<<"$res" ||
        fail "mailto report: want $ok1n successful, $fail1n failed"
    grep -q "certificate-expired" <<<"$res" || fail "mailto report: no certificate-expired failure"
fi

# The https report, as the sink kept it.
report_post=
for f in $("$BIN/lab-posts" reports.plain.stslab); do
    grep -q "\"${DAY}_$D2@$HOST\"" "$f" && report_post=$f
done
if [ -z "$report_post" ]; then
    fail "no https report in the sink"
else
    res=$(python3 "$HERE/check_report.py" json "$report_post" $D2 "$ORG" "$CONTACT" "$DAY") ||
        fail "https report: $res"
    echo "$res"
    grep -q "^report ${DAY}_$D2@$HOST: $ok2n successful, 0 failed\$" <<<"$res" ||
        fail "https report: want $ok2n successful, 0 failed"
fi

# --- a second send sends nothing again ------------------------------------------------------
# (The report message's own delivery to reports.plain.stslab is a session of today, so that
# domain may come up: it has no TLS-RPT record and gets no report.)
posts_before=$("$BIN/lab-posts" reports.plain.stslab --count)
out=$("$STSGATE_BIN/stsgate" --data "$DATA" -c "tlsrpt send $DAY" 2>&1) || fail "second tlsrpt send failed: $out"
echo "$out"
grep -q "TLS reports\? for $DAY to send" <<<"$out" || fail "second tlsrpt send: $out"
grep -qE "($D1|$D2)[,;]" <<<"$out" && fail "second tlsrpt send: a sent report comes up again: $out"
sleep 3
[ "$("$BIN/lab-posts" reports.plain.stslab --count)" = "$posts_before" ] || fail "a second report was posted"
[ "$(grep -c "TLS report for the domain ($D1) queued" "$LOG")" = 1 ] || fail "a second report was queued"

# --- the command's refusals -----------------------------------------------------------------
out=$("$STSGATE_BIN/stsgate" --data "$DATA" -c "tlsrpt send 2026-13-01" 2>&1) && fail "a bad day was accepted"
grep -q "The date must be given as YYYY-MM-DD." <<<"$out" || fail "bad day: $out"
finish
