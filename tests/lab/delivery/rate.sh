#!/usr/bin/env bash
# rate.sh - recipients per time window: with at most 2 recipients per minute for a domain, three
# messages injected together give two deliveries at once while the third waits for the next
# window (it is neither deferred nor bounced).
PORT=2610
. "$(dirname "$0")/lib.sh"

# NEW: no concurrency gate, no messages-per-connection gate, recipient limit 2 per 1 minute, one
# limit for the domain, TLS Preferred
{
    ca_script
    printf 'destconfig\nnew\nvalid.plain.stslab\nn\nn\ny\n1\n2\n1\ny\n2\nn\nn\nn\nn\n\n'
} | configure "rate"
start_agent
# one after the other, each delivered before the next comes: the window must outlive the
# connections that counted it
for i in 1 2 3; do
    send "q$i-$TAG@valid.plain.stslab"
    [ "$i" = 3 ] || "$BIN/lab-wait" valid 1 --to "q$i-$TAG@valid.plain.stslab" --timeout 10 >/dev/null || true
    sleep 1.5
done
deadline=$((SECONDS + 30))
while [ $SECONDS -lt $deadline ]; do
    n=0
    for i in 1 2 3; do
        n=$((n + $("$BIN/lab-messages" valid --to "q$i-$TAG@valid.plain.stslab" --count)))
    done
    [ "$n" -ge 2 ] && break
    sleep 0.2
done
sleep 3
n=0
for i in 1 2 3; do
    n=$((n + $("$BIN/lab-messages" valid --to "q$i-$TAG@valid.plain.stslab" --count)))
done
[ "$n" = 2 ] || fail "$n of 3 messages delivered within the first window (limit 2)"
no_log "Delayed: "
no_log "Bounced: "
finish
