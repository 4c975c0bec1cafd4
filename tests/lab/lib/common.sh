# tests/lab/lib/common.sh: shared definitions for the lab scripts (sourced, never run).
#
# Fixed addresses inside the lab namespace, the layout of a lab state directory, and small
# helpers (messages, PID bookkeeping, reading the env file). Every lab script sources this first.
# shellcheck shell=bash

LAB_SRC=${LAB_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}

# Addresses inside the namespace. Nothing of the lab uses 127.0.0.1, so the product under test
# can listen there.
LAB_RESOLVER_ADDR=127.0.53.1    # unbound, validating, port 53
LAB_FAKEDNS_ADDR=127.0.53.2     # the mock DNS responder (fakedns.py), port 53
LAB_POLICY_ADDR=127.0.44.1      # nginx: every mta-sts.<domain> policy host, port 443, SNI
LAB_REFUSED_ADDR=127.0.44.99    # nothing listens here: connection refused
LAB_PROXY_ADDR=127.0.80.1       # tinyproxy, HTTP CONNECT proxy
LAB_PROXY_PORT=3128

lab_msg() { printf 'lab: %s\n' "$*" >&2; }
lab_die() { printf 'lab: error: %s\n' "$*" >&2; exit 1; }

# lab_load_env DIR: read DIR/env (written by `scripts/lab up`) into the current shell.
lab_load_env() {
    local dir=$1
    [ -r "$dir/env" ] || lab_die "no lab state in $dir (run: scripts/lab up --dir $dir)"
    # shellcheck disable=SC1091
    . "$dir/env"
}

# lab_find_env: locate the env file for the helpers: $LAB_ENV, else $LAB_DIR/env, else the
# default state directory.
lab_find_env() {
    if [ -n "${LAB_ENV:-}" ]; then
        [ -r "$LAB_ENV" ] || lab_die "LAB_ENV=$LAB_ENV is not readable"
        # shellcheck disable=SC1090
        . "$LAB_ENV"
    else
        lab_load_env "${LAB_DIR:-$(lab_default_dir)}"
    fi
}

lab_default_dir() { printf '%s\n' "/tmp/stsgate-lab"; }

# PID bookkeeping: $LAB_DIR/pids holds "<what> <pid>" lines for everything `up` started.
lab_pid_add() { printf '%s %s\n' "$1" "$2" >>"$LAB_DIR/pids"; }

lab_pid_alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }

# lab_wait_file FILE SECONDS: wait until FILE exists and is not empty.
lab_wait_file() {
    local f=$1 n=$(($2 * 10))
    while [ "$n" -gt 0 ]; do
        [ -s "$f" ] && return 0
        sleep 0.1
        n=$((n - 1))
    done
    return 1
}

# lab_ns CMD...: run CMD inside the lab namespace.
lab_ns() { ip netns exec "$LAB_NS" "$@"; }

# lab_zone_of NAME: the lab zone that NAME belongs to (longest suffix), or nothing.
lab_zone_of() {
    local name=${1%.} best="" z kind
    while read -r z kind; do
        case "$name" in
        "$z" | *."$z") [ ${#z} -gt ${#best} ] && best=$z ;;
        esac
    done < <(grep -v -e '^#' -e '^[[:space:]]*$' "$LAB_SRC/zones.conf")
    printf '%s\n' "$best"
}

# lab_receivers: the receiver table without comments, one receiver per line.
lab_receivers() { grep -v -e '^#' -e '^[[:space:]]*$' "$LAB_SRC/receivers.conf"; }

# lab_v6_of ADDR: a receiver's IPv6 address, beside its IPv4 one: 127.0.25.N -> fd00:25::N.
lab_v6_of() { printf 'fd00:25::%s\n' "${1##*.}"; }

# lab_receiver_field NAME COLUMN: one column (1-based) of a receiver's line.
lab_receiver_field() {
    lab_receivers | awk -v n="$1" -v c="$2" '$1 == n { print $c; found = 1 } END { exit !found }'
}
