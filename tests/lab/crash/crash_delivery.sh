#!/usr/bin/env bash
# crash_delivery.sh - issue 6's crash test: 5 000 messages injected into the real stsgated while
# it is killed with SIGKILL and restarted, during injection and during delivery. Afterwards every
# message a client got 250 for must reach the receiver at least once; duplicates are counted and
# reported (a message delivered, then killed before the outcome was recorded, is sent again:
# at-least-once, never lost).
PORT=2600
. "$(dirname "$0")/../delivery/lib.sh"
TOTAL=${CRASH_MESSAGES:-5000}
KILLS_INJECT=3
KILLS_DELIVER=3
rcpt="crash-$TAG@valid.plain.stslab"
acked=$ROOT/acked

dest_script new valid.plain.stslab 2 | configure "crash test"
start_agent

restart_agent() {
    kill -KILL "$AGENT_PID" 2>/dev/null || true
    wait "$AGENT_PID" 2>/dev/null || true
    AGENT_PID=
    start_agent
}

python3 "$(dirname "$0")/inject.py" 127.0.0.1 "$PORT" "$rcpt" "$TOTAL" 8 "$acked" \
    >"$ROOT/inject.out" 2>&1 &
inject_pid=$!

kills=0
while kill -0 "$inject_pid" 2>/dev/null && [ "$kills" -lt "$KILLS_INJECT" ]; do
    sleep "1.$((RANDOM % 9))"
    kill -0 "$inject_pid" 2>/dev/null || break
    restart_agent
    kills=$((kills + 1))
done
wait "$inject_pid" || fail "the injector failed"
cat "$ROOT/inject.out"
acked_n=$(sort -un "$acked" | wc -l)
echo "killed $kills times during injection; $acked_n messages acknowledged with 250"
[ "$acked_n" -eq "$TOTAL" ] || fail "only $acked_n of $TOTAL messages were acknowledged"

# Kill it again while it delivers.
dk=0
for _ in $(seq 1 $KILLS_DELIVER); do
    sleep "0.$((3 + RANDOM % 6))"
    restart_agent
    dk=$((dk + 1))
done
echo "killed $dk times during delivery"

# Wait until every acknowledged message has arrived (bounded).
ids=$ROOT/delivered
for i in $(seq 1 240); do
    "$BIN/lab-messages" valid --to "$rcpt" | xargs -r grep -h '^X-Crash-Id:' |
        awk '{print $2}' | tr -d '\r' | sort >"$ids"
    missing=$(sort -u "$acked" | comm -23 - <(sort -u "$ids") | wc -l)
    [ "$missing" -eq 0 ] && break
    sleep 1
done
missing_list=$(sort -u "$acked" | comm -23 - <(sort -u "$ids"))
missing=$(printf '%s' "$missing_list" | grep -c . || true)
delivered=$(wc -l <"$ids")
unique=$(sort -u "$ids" | wc -l)
dups=$((delivered - unique))
echo "delivered $delivered messages: $unique distinct, $dups duplicates, $missing lost"
[ "$missing" -eq 0 ] || fail "lost acknowledged messages: $(echo "$missing_list" | head -n 20 | tr '\n' ' ')"
no_log "Bounced: .*$rcpt"
finish
