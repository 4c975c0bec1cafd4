#!/usr/bin/env bash
# reuse.sh - connection reuse and its limits: five messages for one domain wait (deferred under
# TLS Required against a receiver without STARTTLS); once Preferred is committed they go out
# with concurrency 1 and at most 2 messages per connection: three connections carrying 2, 2 and
# 1 messages, one after the other, every message delivered once.
PORT=2608
. "$(dirname "$0")/lib.sh"

# NEW with concurrency 1 (one limit for the domain), 2 messages per connection, TLS Required,
# and a bounce profile retrying after 2 s
limits_script() { # op tls
    printf 'destconfig\n%s\nnotls.plain.stslab\ny\n1\ny\n2\nn\n1\ny\n%s\nn\nn\ny\n2\nn\n\n' "$1" "$2"
}
{
    ca_script
    bounce_script soon 100 3600 2 2 y
    limits_script new 3
} | configure "Required, limits"
start_agent
for i in 1 2 3 4 5; do
    send "u$i-$TAG@notls.plain.stslab"
done
for i in 1 2 3 4 5; do
    mid=$(mid_of "u$i-$TAG@notls.plain.stslab")
    expect_log "Delayed: DCID [0-9]+ MID $mid to RID 0 - 4\.7\.4 "
done
limits_script edit 2 | configure_live "Preferred"
for i in 1 2 3 4 5; do
    "$BIN/lab-wait" notls 1 --to "u$i-$TAG@notls.plain.stslab" --timeout 30 >/dev/null || fail "u$i not delivered"
done
sleep 1
# the connections that delivered: each carried at most 2 messages, and some carried 2
starts=$(grep -E "Delivery start DCID [0-9]+ MID" "$LOG" | sed 's/.*Delivery start DCID \([0-9]*\) .*/\1/' | sort | uniq -c)
max=$(echo "$starts" | awk '{ if ($1 > m) m = $1 } END { print m + 0 }')
conns=$(echo "$starts" | grep -c .)
[ "$max" = 2 ] || fail "a connection carried $max messages (limit 2, reuse expected)"
[ "$conns" -ge 3 ] || fail "only $conns connections for 5 messages at 2 per connection"
# concurrency 1: never two connections open at once
open=$(awk '/ Info: New SMTP DCID / { n++; if (n > m) m = n } / Info: DCID [0-9]+ close$/ { if (n > 0) n-- } END { print m + 0 }' "$LOG")
[ "$open" = 1 ] || fail "$open connections were open at once (concurrency 1)"
for i in 1 2 3 4 5; do
    [ "$("$BIN/lab-messages" notls --to "u$i-$TAG@notls.plain.stslab" --count)" = 1 ] || fail "u$i delivered more than once"
done
finish
