# tests/lab/enforce/lib.sh - shared by the enforcement lab tests (sourced, inside the namespace).
#
# Builds on the delivery tests' helpers (tests/lab/delivery/lib.sh: a data directory and port per
# test, the real shell, the real stsgated, lab-send, mail_logs assertions) and adds what the
# MTA-STS / DANE matrix needs: destconfig entries with the DANE and MTA STS settings, an agent
# started at debug level (restartable on the same data directory), and scenario tables.
. "$(dirname "${BASH_SOURCE[0]}")/../delivery/lib.sh"

# enf_dest_script new|edit DOMAIN TLS DANE STS: TLS 1-6; DANE "-" (follow the default) or 1-3
# (No, Opportunistic, Mandatory); STS "-" or 1-2 (Off, On).
enf_dest_script() {
    local op=$1 domain=$2 tls=$3 dane=$4 sts=$5
    printf 'destconfig\n%s\n%s\n' "$op" "$domain"
    printf 'n\nn\nn\n' # concurrency, messages per connection, recipient limit gates
    printf 'y\n%s\n' "$tls"
    if [ "$tls" != 1 ]; then
        if [ "$dane" = - ]; then printf 'n\n'; else printf 'y\n%s\n' "$dane"; fi
        if [ "$sts" = - ]; then printf 'n\n'; else printf 'y\n%s\n' "$sts"; fi
    fi
    printf 'n\nn\n\n' # bounce profile and IP sort gates, leave the menu
}

# setup_proxy_script URL: destconfig SETUP, policies fetched through the proxy.
setup_proxy_script() {
    printf 'destconfig\nsetup\n\nn\ny\n%s\nn\n\n' "$1"
}

# box_msgs RECEIVER RCPT: the message files in RECEIVER's maildir for RCPT; box_count the number;
# box_wait RECEIVER RCPT N TIMEOUT waits for at least N. One grep over the maildir: lab-messages
# reads each file with processes of its own, which takes minutes once a receiver shared by
# parallel tests holds thousands of messages.
box_msgs() {
    local dir="$LAB_DIR/recv/$1/mail"
    grep -rlixF -- "Delivered-To: $2" "$dir/new" "$dir/cur" 2>/dev/null || true
}
box_count() { box_msgs "$1" "$2" | grep -c . || true; }
box_wait() {
    local i
    for i in $(seq 1 $(($4 * 5))); do
        [ "$(box_count "$1" "$2")" -ge "$3" ] && return 0
        sleep 0.2
    done
    return 1
}

# start_agent: stsgated at debug level (the MTA-STS engine's Debug lines are asserted too); may
# be called again after stop_agent on the same data directory.
start_agent() {
    mkdir -p "$DATA"
    local before n
    before=$(grep -c "Listening for SMTP" "$LOG" 2>/dev/null || true)
    before=${before:-0}
    "$STSGATE_BIN/stsgated" --data "$DATA" --listen "127.0.0.1:$PORT" --log-level debug \
        --sts-fetch-timeout 10 >>"$ROOT/agent.out" 2>&1 &
    AGENT_PID=$!
    for _ in $(seq 1 100); do
        n=$(grep -c "Listening for SMTP" "$LOG" 2>/dev/null || true)
        [ "${n:-0}" -gt "$before" ] && return 0
        sleep 0.1
    done
    fail "stsgated did not start"
    tail -n 30 "$ROOT/agent.out"
    exit 1
}

stop_agent() {
    if [ -n "$AGENT_PID" ]; then
        kill "$AGENT_PID" 2>/dev/null || true
        wait "$AGENT_PID" 2>/dev/null || true
        AGENT_PID=
    fi
}

# Lines of mail_logs written since mark_log.
LOG_MARK=0
mark_log() { LOG_MARK=$(wc -l <"$LOG"); }
new_lines() { tail -n +$((LOG_MARK + 1)) "$LOG"; }

# wait_new REGEX [TIMEOUT]: a line matching REGEX appears after the mark.
wait_new() {
    local re=$1 t=${2:-10} i
    for i in $(seq 1 $((t * 10))); do
        new_lines | grep -Eq -- "$re" && return 0
        sleep 0.1
    done
    return 1
}

# check_scenario NAME DOMAIN EXPECT REGEXPS: the outcome of the message sent to
# NAME-$TAG@DOMAIN. EXPECT: RECEIVER[+tls|+plain] (delivered there) or deferred:RECEIVER (deferred,
# nothing in RECEIVER's maildir), optionally followed by ",!OTHER" (nothing in OTHER either).
# REGEXPS: extended regexps separated by " ;; ", each must match a line after the mark; "!"
# first: none may. @D@ stands for the domain, @MID@ for the message's MID.
SCENARIOS_CHECKED=0
check_scenario() {
    local name=$1 domain=$2 expect=$3 regexps=$4
    local rcpt="$name-$TAG@$domain" where="$name ($domain, $expect)"
    local mid main others box mode file
    SCENARIOS_CHECKED=$((SCENARIOS_CHECKED + 1))
    mid=$(mid_of "$rcpt")
    [ -n "$mid" ] || { fail "$where: no MID for $rcpt"; return; }
    main=${expect%%,*}
    others=
    [ "$main" != "$expect" ] && others=${expect#*,}
    case $main in
    deferred:*)
        box=${main#deferred:}
        wait_new "Delayed: DCID [0-9]+ MID $mid to RID 0 - " 40 ||
            { fail "$where: MID $mid was not deferred"; return; }
        [ "$(box_count "$box" "$rcpt")" = 0 ] || fail "$where: delivered to $box anyway"
        ;;
    *)
        box=${main%%+*}
        mode=
        [ "$box" != "$main" ] && mode=${main#*+}
        if ! box_wait "$box" "$rcpt" 1 40; then
            fail "$where: not delivered to $box"
            return
        fi
        wait_new "Message done DCID [0-9]+ MID $mid to RID \[0\]" 10 || fail "$where: no Message done line"
        file=$(box_msgs "$box" "$rcpt" | head -n 1)
        case $mode in
        tls) grep -q "(using TLSv1\.[23]" "$file" || fail "$where: not received over TLS 1.2+" ;;
        plain) if grep -q "(using TLS" "$file"; then fail "$where: received over TLS"; fi ;;
        esac
        if new_lines | grep -Eq "Delayed: DCID [0-9]+ MID $mid to "; then fail "$where: deferred first"; fi
        ;;
    esac
    local o
    for o in ${others//,/ }; do
        o=${o#!}
        [ "$(box_count "$o" "$rcpt")" = 0 ] || fail "$where: delivered to $o"
    done
    local re
    while [ -n "$regexps" ]; do
        re=${regexps%% ;; *}
        if [ "$re" = "$regexps" ]; then regexps=; else regexps=${regexps#* ;; }; fi
        re=${re//@D@/$domain}
        re=${re//@MID@/$mid}
        if [ "${re:0:1}" = "!" ]; then
            if new_lines | grep -Eq -- "${re:1}"; then
                fail "$where: unexpected line: $(new_lines | grep -E -- "${re:1}" | head -n 1)"
            fi
        else
            wait_new "$re" 10 || fail "$where: no line matching: $re"
        fi
    done
}

# run_table OP < TABLE: one phase. Lines "name|tls|dane|sts|domain|expect|regexps" (blank lines and
# "#" comments skipped): every entry is configured in one shell session and committed (the agent
# must take it), then one message per line is sent, then every line is checked. EXTRA_SCRIPT, when
# set, is a function whose output joins the shell session (routes, SETUP).
run_table() {
    local op=$1 rows=() line
    while IFS= read -r line; do
        case $line in '' | '#'*) continue ;; esac
        rows+=("$line")
    done
    {
        for line in "${rows[@]}"; do
            IFS='|' read -r name tls dane sts domain expect regexps <<<"$line"
            enf_dest_script "$op" "$domain" "$tls" "$dane" "$sts"
        done
        if [ -n "${EXTRA_SCRIPT:-}" ]; then "$EXTRA_SCRIPT"; fi
    } | configure_live "enforcement matrix ($op)"
    mark_log # from here on the agent uses the new entries
    for line in "${rows[@]}"; do
        IFS='|' read -r name tls dane sts domain expect regexps <<<"$line"
        send "$name-$TAG@$domain"
    done
    for line in "${rows[@]}"; do
        IFS='|' read -r name tls dane sts domain expect regexps <<<"$line"
        check_scenario "$name" "$domain" "$expect" "$regexps"
    done
}

# enf_finish: stop the agent (it exits as on SIGTERM, so a sanitizer build reports leaks and
# errors into agent.out), fail on any sanitizer report, then finish.
enf_finish() {
    stop_agent
    if grep -qE "ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:" "$ROOT/agent.out"; then
        fail "sanitizer report from stsgated:"
        grep -E -A12 "ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:" "$ROOT/agent.out" | head -n 40
    fi
    finish
}
