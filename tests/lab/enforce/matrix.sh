#!/usr/bin/env bash
# matrix.sh - delivery-policy.md §3 (MTA-STS) and §4 (DANE) in the lab, as a table: each line is
# one scenario (a lab scenario domain with destconfig TLS / DANE / MTA STS settings), one message
# is sent to a recipient unique to the line, and the line says where the mail must land (or that
# it is deferred and lands nowhere) and which mail_logs lines must (or must not) appear.
# Phase 1 configures every domain with NEW; phase 2 changes some of them with EDIT (Mandatory
# DANE, a route) while the agent runs, as an operator would.
PORT=2611
. "$(dirname "$0")/lib.sh"

OK='MTA-STS policy for the domain \(@D@\) Successful\.'
APPLY='Applying MTA-STS policy for the domain \(@D@\)'
NOSTS='!MTA-STS policy for the domain \(@D@\) (Successful|Failed)'
DEFER='Delayed: DCID [0-9]+ MID @MID@ to RID 0 - 4\.7\.5 - TLS required'

ca_script | configure "lab CA"
grep -q "certificate authorities imported" "$ROOT/shell.out" || { fail "the lab CA was not imported"; exit 1; }
start_agent

# name|TLS|DANE|STS|domain|expect|log regexps
run_table new <<EOF_TABLE
# MTA-STS enforce: matching MX, non-matching MX, a skipped MX, wildcard depth
sts-enforce|2|-|2|sts-enforce.plain.stslab|valid+tls|$APPLY ;; $OK ;; Successfully fetched MTA-STS TXT record for domain\(@D@\) ;; Fetch MTA-STS policy for the domain\(@D@\)
sts-nomatch|2|-|2|sts-nomatch.plain.stslab|deferred:valid|DCID 0 MTA-STS: skipping mx\.@D@, not listed in the policy ;; Delayed: DCID 0 MID @MID@ to RID 0 - 4\.7\.5 - MTA-STS \('000', \['no MX host of @D@ matches its policy'\]\) ;; MTA-STS policy for the domain \(@D@\) Failed: no MX host of @D@ matches its policy
sts-skip|2|-|2|sts-skip.plain.stslab|valid+tls,!mxname|DCID 0 MTA-STS: skipping mx1\.@D@, not listed in the policy ;; $OK ;; !New SMTP DCID [0-9]+ interface [^ ]+ address 127\.0\.25\.2 port
sts-wildcard|2|-|2|sts-wildcard.plain.stslab|valid+tls|$OK ;; !skipping mx\.@D@
sts-wildcard-deep|2|-|2|sts-wildcard-deep.plain.stslab|deferred:valid|DCID 0 MTA-STS: skipping a\.b\.@D@, not listed in the policy ;; MTA-STS \('000', \['no MX host of @D@ matches its policy'\]\)
sts-crlf|2|-|2|sts-crlf.plain.stslab|valid+tls|$OK
sts-splittxt|2|-|2|sts-splittxt.plain.stslab|valid+tls|$OK
sts-othertxt|2|-|2|sts-othertxt.plain.stslab|valid+tls|$OK
# testing and none
sts-testing|2|-|2|sts-testing.plain.stslab|valid+tls|MTA-STS policy for the domain \(@D@\) Successful \(testing mode\)\.
sts-testing-expired|2|-|2|sts-testing-expired.plain.stslab|expired+tls|MTA-STS policy for the domain \(@D@\) Failed \(testing mode, delivering anyway\): verify error: certificate has expired
sts-none|2|-|2|sts-none.plain.stslab|valid+tls|$NOSTS ;; !$APPLY
# discovery: no TXT, two TXT records, a bad id, invalid policies -> no policy, the TLS option alone
sts-notxt|2|-|2|sts-notxt.plain.stslab|valid+tls|$NOSTS ;; !$APPLY ;; !Fetch MTA-STS policy for the domain\(@D@\)
sts-twotxt|2|-|2|sts-twotxt.plain.stslab|valid+tls|$NOSTS ;; !$APPLY ;; !Fetch MTA-STS policy for the domain\(@D@\)
sts-badid|2|-|2|sts-badid.plain.stslab|valid+tls|Invalid MTA-STS TXT record for domain\(@D@\) ;; $NOSTS ;; !$APPLY
sts-malformed|2|-|2|sts-malformed.plain.stslab|valid+tls|$NOSTS ;; !$APPLY
sts-noversion|2|-|2|sts-noversion.plain.stslab|valid+tls|$NOSTS ;; !$APPLY
# fetch failures under enforce without a cached policy: the TLS option alone
sts-404|2|-|2|sts-404.plain.stslab|valid+tls|Failed to fetch MTA-STS policy for the domain \(@D@\) ;; $NOSTS
sts-301|2|-|2|sts-301.plain.stslab|valid+tls|Failed to fetch MTA-STS policy for the domain \(@D@\) ;; $NOSTS
sts-type|2|-|2|sts-type.plain.stslab|valid+tls|Failed to fetch MTA-STS policy for the domain \(@D@\) ;; $NOSTS
sts-expired|2|-|2|sts-expired.plain.stslab|valid+tls|Failed to fetch MTA-STS policy for the domain \(@D@\) ;; $NOSTS
sts-untrusted|2|-|2|sts-untrusted.plain.stslab|valid+tls|Failed to fetch MTA-STS policy for the domain \(@D@\) ;; $NOSTS
sts-refused|2|-|2|sts-refused.plain.stslab|valid+tls|Failed to fetch MTA-STS policy for the domain \(@D@\) ;; $NOSTS
sts-nxdomain|2|-|2|sts-nxdomain.plain.stslab|valid+tls|Failed to fetch MTA-STS policy for the domain \(@D@\) ;; $NOSTS
sts-txt-servfail|2|-|2|sts-txt-servfail.signed.stslab|valid+tls|$NOSTS ;; !Fetch MTA-STS policy for the domain\(@D@\)
# enforce, the listed MX is bad: expired, wrong name, untrusted, no STARTTLS, TLS fails, stripped;
# domaincert under Required - Verify: the policy's MX-name check replaces the option's domain check
sts-mx-expired|2|-|2|sts-mx-expired.plain.stslab|deferred:expired|$DEFER \('000', \['verify error: certificate has expired'\]\) ;; MTA-STS policy for the domain \(@D@\) Failed: verify error
sts-mx-wrongname|2|-|2|sts-mx-wrongname.plain.stslab|deferred:wrongname|$DEFER \('000', \['MTA-STS: certificate does not match MX host mx\.@D@'\]\) ;; MTA-STS policy for the domain \(@D@\) Failed: MTA-STS: certificate does not match
sts-mx-untrusted|2|-|2|sts-mx-untrusted.plain.stslab|deferred:untrusted|$DEFER \('000', \['verify error: ;; MTA-STS policy for the domain \(@D@\) Failed: verify error
sts-mx-domaincert|5|-|2|sts-mx-domaincert.plain.stslab|deferred:domaincert|$DEFER \('000', \['MTA-STS: certificate does not match MX host mx\.@D@'\]\)
sts-mx-notls|2|-|2|sts-mx-notls.plain.stslab|deferred:notls|DCID [0-9]+ TLS was required but the server did not offer STARTTLS ;; $DEFER \('000', \['STARTTLS not offered by mx\.@D@'\]\) ;; MTA-STS policy for the domain \(@D@\) Failed: STARTTLS not offered ;; !retrying mx\.@D@ without TLS
sts-mx-badtls|2|-|2|sts-mx-badtls.plain.stslab|deferred:badtls|$DEFER \('000', \['TLS negotiation failed with mx\.@D@ ;; !retrying mx\.@D@ without TLS
sts-mx-stripped|2|-|2|sts-mx-stripped.plain.stslab|deferred:valid|$DEFER \('000', \['STARTTLS not offered by mx\.@D@'\]\) ;; !mx\.@D@; delivering in the clear
stripped-preferred|2|-|-|stripped.plain.stslab|valid+plain|DCID [0-9]+ STARTTLS not offered by mx\.@D@; delivering in the clear \(Preferred\) ;; !$APPLY
# DANE Opportunistic
dane-ee|2|2|-|dane-ee.signed.stslab|selfsigned+tls|DCID [0-9]+ DANE SUCCESS for mx\.@D@ \(TLSA 3 1 1\)
dane-ta|2|2|-|dane-ta.signed.stslab|valid+tls|DCID [0-9]+ DANE SUCCESS for mx\.@D@ \(TLSA 2 1 1\)
dane-digest|2|2|-|dane-digest.signed.stslab|selfsigned+tls|DCID [0-9]+ DANE SUCCESS for mx\.@D@ \(TLSA 3 (1 2|0 0)\)
dane-mismatch|2|2|-|dane-mismatch.signed.stslab|deferred:valid|DCID [0-9]+ DANE FAILED for mx\.@D@: no TLSA record matches the certificate ;; $DEFER \('000', \['DANE: no TLSA record of mx\.@D@ matches the certificate'\]\) ;; !mx\.@D@; delivering in the clear
dane-unusable|2|2|-|dane-unusable.signed.stslab|valid+tls|DCID [0-9]+ DANE: only unusable TLSA records for mx\.@D@, TLS without authentication
dane-unsigned|2|2|-|dane-unsigned.plain.stslab|selfsigned+tls|DCID [0-9]+ DANE: no secure TLSA for mx\.@D@, DANE not applied ;; !DANE SUCCESS for mx\.@D@
dane-servfail|2|2|-|dane-servfail.signed.stslab|deferred:valid|DCID 0 DANE FAILED for mx\.@D@: TLSA lookup for mx\.@D@ failed ;; $DEFER
dane-bogus|2|2|-|dane-bogus.bogus.stslab|deferred:valid|Delayed: DCID 0 MID @MID@ to RID 0 - 4\.4\.3 - 
dane-notlsa|2|2|-|dane-notlsa.signed.stslab|valid+tls|DCID [0-9]+ DANE: no secure TLSA for mx\.@D@, DANE not applied
dane-mxplain|2|2|-|dane-mxplain.signed.stslab|valid+tls|DCID [0-9]+ DANE: no secure TLSA for mx\.dane-mxplain\.plain\.stslab, DANE not applied
dane-mandatory-notlsa|2|3|-|valid.signed.stslab|deferred:valid|DCID 0 DANE FAILED for mx\.@D@: no secure TLSA for mx\.@D@ ;; $DEFER \('000', \['DANE: no usable secure TLSA answer for mx\.@D@'\]\)
# MX host names that are aliases: TLSA at the CNAME target first, then at the alias
dane-cname|2|3|-|dane-cname.signed.stslab|valid+tls|DCID [0-9]+ DANE SUCCESS for mx\.@D@ \(TLSA 2 1 1\)
dane-cname-alias|2|3|-|dane-cname-alias.signed.stslab|selfsigned+tls|DCID [0-9]+ DANE SUCCESS for mx\.@D@ \(TLSA 3 1 1\)
dane-cname-both|2|2|-|dane-cname-both.signed.stslab|deferred:selfsigned|DCID [0-9]+ DANE FAILED for mx\.@D@: no TLSA record matches the certificate ;; !DANE SUCCESS for mx\.@D@
dane-cname-plain|2|2|-|dane-cname-plain.signed.stslab|valid+tls|DCID [0-9]+ DANE: no secure TLSA for mx\.@D@, DANE not applied
# DANE and MTA-STS on one domain
dane-sts-ok|2|2|2|dane-sts-ok.signed.stslab|selfsigned+tls|DCID [0-9]+ DANE SUCCESS for mx\.@D@ \(TLSA 3 1 1\) ;; $APPLY ;; !skipping mx\.@D@
dane-sts-fail|2|2|2|dane-sts-fail.signed.stslab|deferred:valid|DCID [0-9]+ DANE FAILED for mx\.@D@: no TLSA record matches the certificate ;; $APPLY ;; !$OK ;; !mx\.@D@; delivering in the clear
EOF_TABLE
echo "phase 1: $SCENARIOS_CHECKED scenarios checked"

# Phase 2: the same agent, entries edited while it runs; a route for an enforce domain.
route_piece() { route_script sts-wildcard-deep.plain.stslab "[127.0.25.1]"; }
EXTRA_SCRIPT=route_piece run_table edit <<EOF_TABLE
dane-mandatory-ok|2|3|-|dane-ee.signed.stslab|selfsigned+tls|DCID [0-9]+ DANE SUCCESS for mx\.@D@ \(TLSA 3 1 1\)
dane-mandatory-notlsa2|2|3|-|dane-notlsa.signed.stslab|deferred:valid|DCID 0 DANE FAILED for mx\.@D@: no secure TLSA for mx\.@D@ ;; $DEFER
dane-mandatory-insecure|2|3|-|dane-mxplain.signed.stslab|deferred:valid|DCID 0 DANE FAILED for mx\.dane-mxplain\.plain\.stslab: the address records of mx\.dane-mxplain\.plain\.stslab are not DNSSEC-signed
dane-mandatory-unusable|2|3|-|dane-unusable.signed.stslab|deferred:valid|DCID 0 DANE FAILED for mx\.@D@: only unusable TLSA records ;; $DEFER
dane-mandatory-cname-plain|2|3|-|dane-cname-plain.signed.stslab|deferred:valid|DCID 0 DANE FAILED for mx\.@D@: the address records of mx\.@D@ are not DNSSEC-signed
dane-mandatory-unsigned|2|3|-|dane-unsigned.plain.stslab|deferred:selfsigned|DCID 0 DANE FAILED for mx\.@D@: the MX records of @D@ are not DNSSEC-signed
dane-off|2|1|-|dane-mismatch.signed.stslab|valid+tls|!DANE (SUCCESS|FAILED) for mx\.@D@
sts-routed|2|-|2|sts-wildcard-deep.plain.stslab|valid+tls|!skipping a\.b\.@D@ ;; !$APPLY ;; $NOSTS
sts-off|2|-|1|sts-nomatch.plain.stslab|valid+tls|!skipping mx\.@D@ ;; !$APPLY
EOF_TABLE
echo "$SCENARIOS_CHECKED scenarios checked"

# TLS reporting: each connection's outcome was counted under the right policy and result type
# (`tlsrpt report` prints the RFC 8460 report of a domain and day from the agent's counts).
DAY=$(date -u +%F)
report_has() { # DOMAIN POLICY-TYPE RESULT [POLICY-STRING-PREFIX]
    local out="$ROOT/report-$1.json" why
    "$STSGATE_BIN/stsgate" --data "$DATA" -c "tlsrpt report $1 $DAY" >"$out" 2>&1 ||
        { fail "tlsrpt report $1: $(head -n 3 "$out")"; return; }
    why=$(python3 "$(dirname "$0")/rpt_check.py" "$out" "$2" "$3" ${4:+"$4"} 2>&1) ||
        fail "TLS-RPT $1: $why"
}
report_has sts-enforce.plain.stslab sts success "mode: enforce"
report_has sts-enforce.plain.stslab sts success "mx: mx.sts-enforce.plain.stslab"
report_has dane-ee.signed.stslab tlsa success "3 1 1 "
report_has dane-digest.signed.stslab tlsa success "3 1 2 "
report_has dane-cname.signed.stslab tlsa success "2 1 1 "
report_has sts-mx-expired.plain.stslab sts certificate-expired
report_has sts-mx-wrongname.plain.stslab sts certificate-host-mismatch
report_has sts-mx-untrusted.plain.stslab sts certificate-not-trusted
report_has sts-mx-notls.plain.stslab sts starttls-not-supported
report_has sts-testing-expired.plain.stslab sts certificate-expired "mode: testing"
report_has dane-mismatch.signed.stslab tlsa validation-failure
report_has valid.signed.stslab no-policy-found dane-required
report_has dane-servfail.signed.stslab no-policy-found dnssec-invalid
report_has stripped.plain.stslab no-policy-found starttls-not-supported
echo "TLS-RPT counts checked"
enf_finish
