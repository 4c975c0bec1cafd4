#!/usr/bin/env bash
# ipv6.sh - delivery over IPv6 and the IP sort preference (destconfig "how should the appliance
# sort IP addresses within an MX preference level?"). dual.plain.stslab's MX host has an A and an
# AAAA record for the receiver valid (127.0.25.1, fd00:25::1); v6only.plain.stslab's has the AAAA
# only.
#  1. Prefer IPv6: delivered over IPv6, with TLS verified against the MX name.
#  2. Require IPv4 (EDIT while the agent runs): delivered over IPv4.
#  3. An AAAA-only host: delivered over IPv6 under the default (Prefer IPv4); under Require IPv4
#     there is nothing to try, and that will not change: bounced (5.4.4).
PORT=2616
. "$(dirname "$0")/lib.sh"
V4=$LAB_RECV_VALID
V6=$LAB_RECV6_VALID

# sort_script new|edit DOMAIN SORT_ITEM: TLS Preferred - Verify, the IP sort preference SORT_ITEM
# (1 Prefer IPv4, 2 Prefer IPv6, 3 Require IPv4, 4 Require IPv6); "-" leaves it to the default.
sort_script() {
    printf 'destconfig\n%s\n%s\nn\nn\nn\ny\n4\nn\nn\nn\n' "$1" "$2"
    if [ "$3" = - ]; then printf 'n\n\n'; else printf 'y\n%s\n\n' "$3"; fi
}

# delivered_via RCPT ADDR: RCPT's message was delivered by a connection to ADDR.
delivered_via() {
    local mid dcid
    "$BIN/lab-wait" valid 1 --to "$1" --timeout 30 >/dev/null || { fail "$1: not delivered"; return; }
    mid=$(mid_of "$1")
    expect_log "Message done DCID [0-9]+ MID $mid to RID \[0\]"
    dcid=$(sed -n "s/.*Message done DCID \([0-9]*\) MID $mid to .*/\1/p" "$LOG" | head -n 1)
    grep -Eq "New SMTP DCID $dcid interface [^ ]+ address ${2//./\\.} port 25\$" "$LOG" ||
        fail "$1: delivered by DCID $dcid, which is not a connection to $2"
}

{
    ca_script
    sort_script new dual.plain.stslab 2
    sort_script new v6only.plain.stslab -
} | configure "IPv6"
start_agent
send "a-$TAG@dual.plain.stslab"
delivered_via "a-$TAG@dual.plain.stslab" "$V6"
f=$("$BIN/lab-messages" valid --to "a-$TAG@dual.plain.stslab" | head -n 1)
[ -n "$f" ] && { grep -q "(using TLS" "$f" || fail "over IPv6: not received over TLS"; }

sort_script edit dual.plain.stslab 3 | configure_live "Require IPv4"
send "b-$TAG@dual.plain.stslab"
delivered_via "b-$TAG@dual.plain.stslab" "$V4"

send "c-$TAG@v6only.plain.stslab"
delivered_via "c-$TAG@v6only.plain.stslab" "$V6"

sort_script edit v6only.plain.stslab 3 | configure_live "v6only: Require IPv4"
send "d-$TAG@v6only.plain.stslab"
mid=$(mid_of "d-$TAG@v6only.plain.stslab")
expect_log "Bounced: DCID 0 MID $mid to RID 0 - 5\.4\.4 - Bad destination host \('000', \['DNS Hard Error: no MX host of v6only\.plain\.stslab has an IPv4 address \(IP sort preference: Require IPv4\)'\]\)"
no_log "Delayed: "
finish
