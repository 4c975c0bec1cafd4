#!/usr/bin/env bash
# route.sh - SMTP routes (delivery-policy.md §5) in the lab: a routed domain goes to the route's
# hosts by priority, with the route's port (valid listens on 2525 too), never through MX; a host
# that refuses the connection is a host failure and the next one is tried; the route host name is
# an accepted reference name (Required - Verify passes on valid's certificate, which names
# mx.valid.plain.stslab and not the routed domain); an address literal gets TLS without SNI.
PORT=2602
. "$(dirname "$0")/lib.sh"

d1="routed-$TAG.stslab"       # no such domain in DNS: only the route can deliver it
d2="literal-$TAG.stslab"
{
    ca_script
    route_script "$d1" "[127.0.25.99]:2525/pri=0, mx.valid.plain.stslab:2525/pri=10"
    route_script "$d2" "[127.0.25.1]:2525"
    dest_script new "$d1" 5
    dest_script new "$d2" 2
} | configure "routes"
start_agent

send "a@$d1"
send "b@$d2"
"$BIN/lab-wait" valid 1 --to "a@$d1" --timeout 30 >/dev/null || fail "$d1: not delivered through the route"
"$BIN/lab-wait" valid 1 --to "b@$d2" --timeout 30 >/dev/null || fail "$d2: not delivered through the route"
mid1=$(mid_of "a@$d1")
mid2=$(mid_of "b@$d2")
expect_log "Message done DCID [0-9]+ MID $mid1 to RID \[0\]"
expect_log "Message done DCID [0-9]+ MID $mid2 to RID \[0\]"
dcid1=$(dcid_of_mid "$mid1")
dcid2=$(dcid_of_mid "$mid2")
# the refused first host, then the second by priority, on port 2525
expect_log "DCID [0-9]+ host \[127\.0\.25\.99\] failed: connect to 127\.0\.25\.99 port 2525: Connection refused"
expect_log "New SMTP DCID $dcid1 interface [0-9.]+ address 127\.0\.25\.1 port 2525"
expect_log "DCID $dcid1 TLS success protocol TLSv1\.[23] cipher [^ ]+ subjectAltName:dNSName=mx\.valid\.plain\.stslab"
expect_log "New SMTP DCID $dcid2 interface [0-9.]+ address 127\.0\.25\.1 port 2525"
expect_log "DCID $dcid2 TLS success protocol"
for r in "a@$d1" "b@$d2"; do
    f=$("$BIN/lab-messages" valid --to "$r" | head -n 1)
    [ -n "$f" ] && { grep -q "(using TLS" "$f" || fail "$r: not received over TLS"; }
done
# no MX lookup for a routed domain: nothing says its DNS failed
no_log "looking up $d1"
finish
