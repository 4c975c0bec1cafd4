#!/usr/bin/env bash
# diag.sh - the shell's tlsverify and dig (cli.md §6) against the lab, no agent running:
# tlsverify follows the committed TLS option (Required - Verify fails on a certificate that only
# names the MX, Required - Verify Hosted Domains accepts it; Preferred goes on in the clear
# without STARTTLS), dig shows the AD flag for the signed zone and not for the unsigned one.
PORT=2609
. "$(dirname "$0")/lib.sh"

{
    ca_script
    dest_script new mxname.plain.stslab 5
    dest_script new hosted.plain.stslab 6
    dest_script new badtls.plain.stslab 3
} | configure "diag"
out=$ROOT/diag.out
printf 'tlsverify mxname.plain.stslab\ntlsverify hosted.plain.stslab\ntlsverify notls.plain.stslab\ntlsverify badtls.plain.stslab\ndig valid.signed.stslab MX\ndig mx.valid.plain.stslab\ndig nope.plain.stslab\n' |
    "$STSGATE_BIN/stsgate" --data "$DATA" >"$out" 2>&1 || true
want() { grep -Fq -- "$1" "$out" || fail "tlsverify/dig output lacks: $1"; }
want "INSECURE MX record(mx.mxname.plain.stslab) found for mxname.plain.stslab"
want "Connecting to 127.0.25.2 on port 25."
want "TLS connection established: protocol TLSv1.3"
want "Certificate verification failed: peer cert does not match domain mxname.plain.stslab"
want "TLS FAILED for mxname.plain.stslab: peer cert does not match domain mxname.plain.stslab"
want "Names checked: hosted.plain.stslab, mx.provider.plain.stslab (subjectAltName only)"
want "TLS SUCCESS for hosted.plain.stslab"
want "STARTTLS is not offered by mx.notls.plain.stslab."
want "TLS NOT USED for notls.plain.stslab"
want "TLS handshake failed after STARTTLS:"
want "TLS FAILED for badtls.plain.stslab: TLS negotiation failed with mx.badtls.plain.stslab"
want ";; flags: qr rd ra ad; ANSWER: 1"
want "IN	MX	10 mx.valid.signed.stslab."
want ";; stsgate: OK, DNSSEC secure (AD from a trusted resolver)"
want "mx.valid.plain.stslab."
want ";; stsgate: OK, DNSSEC insecure (no AD)"
want "status: NXDOMAIN"
[ "$FAILED" = 0 ] || cat "$out"
finish
