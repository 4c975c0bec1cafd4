#!/usr/bin/env bash
# report.sh - the agent's own TLS reports are never held back by MTA-STS or DANE (issue 7,
# reports.h): the report mailbox's domain, reports.plain.stslab, gets DANE Mandatory, which its
# unsigned zone can never satisfy, so ordinary mail to it is deferred; the RFC 8460 report of
# tlsrpt.plain.stslab (rua=mailto:tlsrpt@reports.plain.stslab), sent with `tlsrpt send <today>`,
# must reach that mailbox all the same. Shares the report domains with lab_tlsrpt_send (locks).
PORT=2613
. "$(dirname "$0")/lib.sh"

RPT=reports.plain.stslab
SRC=tlsrpt.plain.stslab
{
    ca_script
    printf 'destconfig\nsetup\n\n\n\ny\n%s\n%s\n\n' "Enforce Lab" "tlsrpt-admin-$TAG@valid.plain.stslab"
    enf_dest_script new "$RPT" 2 3 -
    enf_dest_script new "$SRC" 2 - 2
} | configure "reports: DANE Mandatory on the report domain"
if grep -q "That value is not valid" "$ROOT/shell.out"; then fail "the shell refused a setting"; exit 1; fi
start_agent

mark_log
send "plain-$TAG@$RPT"
send "count-$TAG@$SRC"
check_scenario plain "$RPT" deferred:valid "DCID 0 DANE FAILED for mx\.@D@: the MX records of @D@ are not DNSSEC-signed ;; Delayed: DCID 0 MID @MID@ to RID 0 - 4\.7\.5 - TLS required"
check_scenario count "$SRC" valid+tls "MTA-STS policy for the domain \(@D@\) Successful\."

before=$(box_count valid "tlsrpt@$RPT")
mark_log
out=$("$STSGATE_BIN/stsgate" --data "$DATA" -c "tlsrpt send $(date -u +%F)" 2>&1) ||
    fail "tlsrpt send failed: $out"
if box_wait valid "tlsrpt@$RPT" $((before + 1)) 60; then
    file=$(ls -t $(box_msgs valid "tlsrpt@$RPT") | head -n 1)
    grep -qi "^TLS-Report-Domain: *$SRC" "$file" || fail "the report in the mailbox is not $SRC's"
    wait_new "Message done DCID [0-9]+ MID [0-9]+ to RID \[0\]" 10 || fail "no Message done line for the report"
else
    fail "the report did not reach tlsrpt@$RPT (DANE Mandatory held it back?)"
fi
[ "$(box_count valid "plain-$TAG@$RPT")" = 0 ] ||
    fail "ordinary mail to $RPT was delivered despite DANE Mandatory"
enf_finish
