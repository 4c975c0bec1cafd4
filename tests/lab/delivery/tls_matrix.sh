#!/usr/bin/env bash
# tls_matrix.sh - delivery-policy.md §2 in the lab: every TLS option (1-6) against every receiver
# variant. For each option the 14 scenario domains get that option (destconfig NEW, then EDIT),
# one message each is injected, and the outcome must be the table's: delivered in the clear,
# delivered over TLS, or deferred (or, for tempfail/permfail, the receiver's 4xx/5xx), with the
# mail_logs lines of mail-logs.md.
PORT=2601
. "$(dirname "$0")/lib.sh"

RECEIVERS="valid mxname domaincert hosted wrongname expired untrusted selfsigned nochain notls badtls tempfail permfail stripped"

# The expected outcome per receiver, options 1..6:
#   plain   delivered in the clear            plain4  the same, STARTTLS not offered (logged)
#   retry   handshake failed after 220, delivered in the clear on a new connection (logged)
#   tls     delivered over TLS                tlsv    over TLS although the check failed (logged)
#   d474    deferred 4.7.4, STARTTLS missing  d475h   deferred 4.7.5, handshake failed
#   d475n   deferred 4.7.5, name mismatch     d475c   deferred 4.7.5, chain/date check failed
#   d430    the receiver's 451                b511    the receiver's 550, bounced
declare -A EXPECT=(
    [valid]="plain tls tls tls tls tls"
    [mxname]="plain tls tls tlsv d475n tls"
    [domaincert]="plain tls tls tls tls tls"
    [hosted]="plain tls tls tlsv d475n tls"
    [wrongname]="plain tls tls tlsv d475n d475n"
    [expired]="plain tls tls tlsv d475c d475c"
    [untrusted]="plain tls tls tlsv d475c d475c"
    [selfsigned]="plain tls tls tlsv d475c d475c"
    [nochain]="plain tls tls tlsv d475c d475c"
    [notls]="plain plain4 d474 plain4 d474 d474"
    [badtls]="plain retry d475h retry d475h d475h"
    [tempfail]="d430 d430 d430 d430 d430 d430"
    [permfail]="b511 b511 b511 b511 b511 b511"
    [stripped]="plain plain4 d474 plain4 d474 d474"
)

mx_of() {
    case $1 in
    hosted) echo mx.provider.plain.stslab ;;
    *) echo "mx.$1.plain.stslab" ;;
    esac
}
maildir_of() {
    case $1 in
    stripped) echo valid ;; # the relay passes mail on to valid
    *) echo "$1" ;;
    esac
}

check_cell() {
    local opt=$1 recv=$2 want=$3
    local domain="$recv.plain.stslab" rcpt="o$opt-$TAG@$recv.plain.stslab" mx
    mx=$(mx_of "$recv")
    local where="option $opt / $recv ($want)"
    local mid
    mid=$(mid_of "$rcpt")
    [ -n "$mid" ] || { fail "$where: no MID for $rcpt"; return; }
    case $want in
    plain | plain4 | retry | tls | tlsv)
        local box
        box=$(maildir_of "$recv")
        if ! "$BIN/lab-wait" "$box" 1 --to "$rcpt" --timeout 30 >/dev/null; then
            fail "$where: not delivered to $box"
            return
        fi
        local file
        file=$("$BIN/lab-messages" "$box" --to "$rcpt" | head -n 1)
        wait_log "Message done DCID [0-9]+ MID $mid to RID \[0\]" 10 || fail "$where: no Message done line"
        local dcid
        dcid=$(dcid_of_mid "$mid")
        case $want in
        tls | tlsv)
            grep -q "(using TLSv1\.[23]" "$file" || fail "$where: not received over TLS 1.2+"
            grep -Eq "DCID $dcid TLS success protocol TLSv1\.[23] cipher [^ ]+ subjectAltName:dNSName=" "$LOG" ||
                fail "$where: no 'TLS success' line for DCID $dcid"
            if [ "$want" = tlsv ]; then
                grep -q "DCID $dcid TLS verify failed: .*; delivering over TLS anyway" "$LOG" ||
                    fail "$where: the failed check is not logged"
            else
                if grep -q "DCID $dcid TLS verify failed" "$LOG"; then fail "$where: check logged as failed"; fi
            fi
            ;;
        *)
            if grep -q "(using TLS" "$file"; then fail "$where: received over TLS"; fi
            if grep -q "DCID $dcid TLS success" "$LOG"; then fail "$where: TLS success logged"; fi
            if [ "$want" = plain4 ]; then
                grep -q "DCID $dcid STARTTLS not offered by $mx; delivering in the clear" "$LOG" ||
                    fail "$where: no 'STARTTLS not offered' line"
            fi
            if [ "$want" = retry ]; then
                grep -q "TLS failed after STARTTLS; retrying $mx without TLS (Preferred)" "$LOG" ||
                    fail "$where: no 'TLS failed after STARTTLS; retrying' line"
            fi
            ;;
        esac
        ;;
    d474 | d475h | d475n | d475c | d430 | b511)
        local re
        case $want in
        d474) re="Delayed: DCID [0-9]+ MID $mid to RID 0 - 4\.7\.4 - TLS required \('000', \['STARTTLS not offered by $mx'\]\)" ;;
        d475h) re="Delayed: DCID [0-9]+ MID $mid to RID 0 - 4\.7\.5 - TLS required \('000', \['TLS negotiation failed with $mx: " ;;
        d475n) re="Delayed: DCID [0-9]+ MID $mid to RID 0 - 4\.7\.5 - TLS required \('000', \['peer cert does not match domain $domain'\]\)" ;;
        d475c) re="Delayed: DCID [0-9]+ MID $mid to RID 0 - 4\.7\.5 - TLS required \('000', \['verify error: " ;;
        d430) re="Delayed: DCID [0-9]+ MID $mid to RID 0 - 4\.3\.0 - Temporary failure \('451', \['4\.3\.0 " ;;
        b511) re="Bounced: DCID [0-9]+ MID $mid to RID 0 - 5\.1\.1 - Bad destination mailbox address \('550', \['5\.1\.1 " ;;
        esac
        if ! wait_log "$re" 30; then
            fail "$where: no line matching: $re"
            return
        fi
        local dcid
        dcid=$(grep -E "$re" "$LOG" | head -n 1 | sed -n 's/.*DCID \([0-9]*\) MID.*/\1/p')
        case $want in
        d474) grep -q "DCID $dcid TLS was required but the server did not offer STARTTLS" "$LOG" ||
            fail "$where: no 'did not offer STARTTLS' line" ;;
        d475h) grep -q "DCID $dcid TLS was required but could not be successfully negotiated" "$LOG" ||
            fail "$where: no 'could not be successfully negotiated' line" ;;
        d475n)
            grep -q "DCID $dcid TLS deferring: verify error: peer cert does not match domain $domain" "$LOG" ||
                fail "$where: no 'TLS deferring: verify error: peer cert does not match domain' line"
            grep -q "DCID $dcid TLS was required but could not be successfully negotiated" "$LOG" ||
                fail "$where: no 'could not be successfully negotiated' line"
            ;;
        d475c) grep -q "DCID $dcid TLS deferring: verify error: " "$LOG" ||
            fail "$where: no 'TLS deferring: verify error' line" ;;
        esac
        if [ "$recv" != permfail ] && [ "$recv" != tempfail ]; then
            local box
            box=$(maildir_of "$recv")
            [ "$("$BIN/lab-messages" "$box" --to "$rcpt" --count)" = 0 ] || fail "$where: delivered anyway"
        fi
        ;;
    esac
}

ca_script | configure "lab CA"
grep -q "certificate authorities imported" "$ROOT/shell.out" || { fail "the lab CA was not imported"; exit 1; }
start_agent
for opt in 1 2 3 4 5 6; do
    if [ "$opt" = 1 ]; then op=new; else op=edit; fi
    for r in $RECEIVERS; do
        dest_script "$op" "$r.plain.stslab" "$opt"
    done | configure_live "TLS option $opt" # new connections use it from now on
    for r in $RECEIVERS; do
        send "o$opt-$TAG@$r.plain.stslab"
    done
    for r in $RECEIVERS; do
        set -- ${EXPECT[$r]}
        shift $((opt - 1))
        check_cell "$opt" "$r" "$1"
    done
    echo "option $opt: $(echo $RECEIVERS | wc -w) receivers checked"
done
finish
