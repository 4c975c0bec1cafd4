#!/usr/bin/env bash
# limits.sh - the concurrency limit per mail exchanger IP address against the one for the whole
# domain (destconfig "Select how you want to apply the limits"). limits.plain.stslab has MX 10 ->
# slow (each RCPT TO takes 3 s) and MX 20 -> valid; one message per connection.
#  1. Separate limit for each MX IP, concurrency 1: while a connection holds the slow primary's
#     address, the next ones pass it over and deliver through the backup; the primary never has
#     two connections at once, and nothing is deferred.
#  2. One limit for the entire domain, concurrency 1 (EDIT while the agent runs): one connection
#     at a time, always to the primary; the backup gets nothing.
PORT=2614
. "$(dirname "$0")/lib.sh"
D=limits.plain.stslab
SLOW=127.0.25.15

# limits_script new|edit TYPE: concurrency 1, one message per connection, no recipient limit,
# limits applied as TYPE (1: the whole domain, 2: each MX IP), TLS Preferred.
limits_script() {
    printf 'destconfig\n%s\n%s\n' "$1" "$D"
    printf 'y\n1\ny\n1\nn\n%s\n' "$2"
    printf 'y\n2\nn\nn\nn\nn\n\n'
}

# most_open ADDR: the largest number of delivery connections to ADDR open at once, from
# mail_logs ("New SMTP DCID n ... address ADDR port 25" opens, "DCID n close" ends).
most_open() {
    awk -v addr="$1" '
        / New SMTP DCID / && $0 ~ (" address " addr " port ") {
            for (i = 1; i <= NF; i++) if ($i == "DCID") id = $(i + 1)
            open[id] = 1; n++; if (n > most) most = n
        }
        / DCID [0-9]+ close/ {
            for (i = 1; i <= NF; i++) if ($i == "DCID") id = $(i + 1)
            if (id in open) { delete open[id]; n-- }
        }
        END { print most + 0 }' "$LOG"
}

# delivered_to RECEIVER TAG COUNT: how many of the messages p-TAG-1..COUNT RECEIVER holds.
delivered_to() {
    local n=0 i
    for i in $(seq 1 "$3"); do
        n=$((n + $("$BIN/lab-messages" "$1" --to "p-$2-$i@$D" --count)))
    done
    echo "$n"
}

# ---- 1. a separate limit for each MX IP
{
    ca_script
    limits_script new 2
} | configure "per MX IP"
start_agent
for i in 1 2 3 4; do send "p-a$TAG-$i@$D"; done
for _ in $(seq 1 300); do
    n=$(($(delivered_to slow "a$TAG" 4) + $(delivered_to valid "a$TAG" 4)))
    [ "$n" -ge 4 ] && break
    sleep 0.1
done
[ "$n" = 4 ] || fail "per MX IP: $n of 4 messages delivered within 30 s"
backup=$(delivered_to valid "a$TAG" 4)
[ "$backup" -ge 1 ] || fail "per MX IP: the backup got nothing while the primary was busy"
[ "$(delivered_to slow "a$TAG" 4)" -ge 1 ] || fail "per MX IP: the primary got nothing"
[ "$(most_open "$SLOW")" = 1 ] || fail "per MX IP: $(most_open "$SLOW") connections to $SLOW at once (limit 1)"
[ "$(most_open 127.0.25.1)" = 1 ] || fail "per MX IP: $(most_open 127.0.25.1) connections to the backup at once (limit 1)"
no_log "Delayed: "
echo "per MX IP: $backup of 4 through the backup"

# ---- 2. one limit for the entire domain
limits_script edit 1 | configure_live "per domain"
mark=$(wc -l <"$LOG")
for i in 1 2 3; do send "p-b$TAG-$i@$D"; done
for _ in $(seq 1 300); do
    [ "$(delivered_to slow "b$TAG" 3)" -ge 3 ] && break
    sleep 0.1
done
[ "$(delivered_to slow "b$TAG" 3)" = 3 ] || fail "per domain: $(delivered_to slow "b$TAG" 3) of 3 at the primary within 30 s"
[ "$(delivered_to valid "b$TAG" 3)" = 0 ] || fail "per domain: the backup got mail"
tail -n +"$((mark + 1))" "$LOG" >"$ROOT/phase2.log"
LOG=$ROOT/phase2.log
[ "$(most_open "$SLOW")" = 1 ] || fail "per domain: $(most_open "$SLOW") connections at once (limit 1)"
no_log "Delayed: "
finish
