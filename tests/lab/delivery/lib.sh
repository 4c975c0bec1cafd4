# tests/lab/delivery/lib.sh - shared by the delivery lab tests (sourced, inside the namespace).
#
# Each test gets its own data directory and its own listening port, configures it through the
# real shell (stsgate --data D with a script on stdin), runs the real stsgated, injects with
# lab-send and asserts on the receivers' maildirs (by unique recipient) and on mail_logs.
# The lab CA is trusted through certconfig CERTAUTHORITY CUSTOM IMPORT + ENABLE.
set -euo pipefail
. "$LAB_ENV"
BIN=$LAB_BIN
ROOT=$(mktemp -d /tmp/stsgate-dlv.XXXXXX)
chmod 755 "$ROOT"
DATA=$ROOT/data
LOG=$DATA/logs/mail_logs
PORT=${PORT:-2525}
AGENT_PID=
TAG="$(date +%s)$$"
FAILED=0

cleanup() {
    if [ -n "$AGENT_PID" ]; then
        kill "$AGENT_PID" 2>/dev/null || true
        wait "$AGENT_PID" 2>/dev/null || true
    fi
    if [ "$FAILED" = 0 ]; then
        rm -rf "$ROOT"
    else
        echo "kept for inspection: $ROOT"
    fi
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*"
    FAILED=1
}

# The real shell, script on stdin (one session: pending changes live until its commit); its
# output goes to $ROOT/shell.out.
sh_run() {
    "$STSGATE_BIN/stsgate" --data "$DATA" >>"$ROOT/shell.out" 2>&1 || true
}

# Script pieces, printed for sh_run.
ca_script() { # trust the lab CA: certconfig CERTAUTHORITY CUSTOM IMPORT + ENABLE
    printf 'certconfig\ncertauthority\ncustom\nimport\n%s\nenable\n\n\n\n' "$LAB_CA_BUNDLE"
}
# dest_script new|edit DOMAIN TLS_ITEM [BOUNCE_ITEM]: only the TLS option (1-6) and, when given,
# the bounce profile (its number in the list) are set.
dest_script() {
    local op=$1 domain=$2 tls=$3 bounce=${4:-}
    printf 'destconfig\n%s\n%s\n' "$op" "$domain"
    printf 'n\nn\nn\n' # concurrency, messages per connection, recipient limit gates
    printf 'y\n%s\n' "$tls"
    [ "$tls" != 1 ] && printf 'n\nn\n' # DANE and MTA STS gates
    if [ -n "$bounce" ]; then printf 'y\n%s\n' "$bounce"; else printf 'n\n'; fi
    printf 'n\n\n' # IP sort gate, leave the menu
}
# bounce_script NAME RETRIES LIFETIME INITIAL MAX NOTICE(y/n)
bounce_script() {
    printf 'bounceconfig\nnew\n%s\n%s\n%s\n%s\n%s\n%s\n\n' "$@"
}
# route_script DOMAIN HOSTS
route_script() {
    printf 'smtproutes\nnew\n%s\n%s\n\n' "$1" "$2"
}
commit_script() {
    printf 'commit "%s"\nn\n' "${1:-lab test}"
}

# configure [COMMENT] < script pieces: one shell session ending in a commit that must succeed.
configure() {
    local before
    before=$(grep -c "Changes committed" "$ROOT/shell.out" 2>/dev/null || true)
    { cat; commit_script "${1:-lab test}"; } | sh_run
    if [ "$(grep -c "Changes committed" "$ROOT/shell.out" || true)" -le "${before:-0}" ]; then
        fail "the configuration was not committed (see $ROOT/shell.out)"
        tail -n 30 "$ROOT/shell.out"
        exit 1
    fi
}

# configure_live [COMMENT] < pieces: the same while the agent runs; waits until it uses it.
configure_live() {
    local before i
    before=$(grep -c "is now in use" "$LOG" || true)
    configure "$@"
    for i in $(seq 1 50); do
        [ "$(grep -c "is now in use" "$LOG" || true)" -gt "$before" ] && return 0
        sleep 0.1
    done
    fail "the agent did not take the new configuration within 5 s"
    exit 1
}

start_agent() {
    mkdir -p "$DATA"
    "$STSGATE_BIN/stsgated" --data "$DATA" --listen "127.0.0.1:$PORT" >"$ROOT/agent.out" 2>&1 &
    AGENT_PID=$!
    for _ in $(seq 1 50); do
        grep -q "Listening for SMTP" "$LOG" 2>/dev/null && return 0
        sleep 0.1
    done
    fail "stsgated did not start"
    cat "$ROOT/agent.out"
    exit 1
}

# send RCPT [swaks options]: inject through the agent's listener.
send() {
    local rcpt=$1
    shift
    "$BIN/lab-send" "127.0.0.1:$PORT" "$rcpt" "$@" >/dev/null 2>>"$ROOT/send.err" ||
        { fail "the agent did not accept mail for $rcpt"; return 1; }
}

# mid_of RCPT: the MID the agent gave the (first) message for RCPT.
mid_of() {
    sed -n "s/.* Info: MID \([0-9]*\) ICID [0-9]* RID [0-9]* To: <$1>\$/\1/p" "$LOG" | head -n 1
}

# wait_log REGEX [TIMEOUT]: wait until mail_logs has a line matching the extended REGEX.
wait_log() {
    local re=$1 t=${2:-30} i
    for i in $(seq 1 $((t * 10))); do
        grep -Eq -- "$re" "$LOG" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

expect_log() {
    wait_log "$1" "${2:-30}" || fail "no log line matching: $1"
}

no_log() {
    if grep -Eq -- "$1" "$LOG"; then fail "unexpected log line: $(grep -E -- "$1" "$LOG" | head -n 1)"; fi
}

# The DCID of the connection that delivered or deferred MID.
dcid_of_mid() {
    sed -n "s/.*Delivery start DCID \([0-9]*\) MID $1 to .*/\1/p" "$LOG" | tail -n 1
}

finish() {
    if [ "$FAILED" = 0 ]; then
        echo "PASS"
        exit 0
    fi
    echo "---- mail_logs (last 80 lines)"
    tail -n 80 "$LOG" || true
    exit 1
}
