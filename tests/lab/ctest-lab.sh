#!/usr/bin/env bash
# tests/lab/ctest-lab.sh: how ctest drives the lab (see CMakeLists.txt here).
#   ctest-lab.sh up DIR          the `lab_up` fixture setup: a fresh scripts/lab up --dir DIR
#   ctest-lab.sh down DIR        the `lab_down` fixture cleanup: scripts/lab down, then proof
#                                that no namespace, /etc/netns entry or lab process is left
#   ctest-lab.sh run CMD...      run a lab test: CMD gets LAB_ENV (set by ctest) to source
#   ctest-lab.sh inside CMD...   the same, but CMD runs inside the lab namespace
# Without root every step exits 77, which ctest reports as skipped (never as passed).
set -euo pipefail
here=$(dirname "$(readlink -f "$0")")
top=$(cd "$here/../.." && pwd)
if [ "$(id -u)" != 0 ]; then
    echo "SKIP: the lab needs root (ip netns); run the lab tests as root"
    exit 77
fi
cmd=${1:?usage: ctest-lab.sh up|down DIR | run|inside CMD...}
shift
case "$cmd" in
up)
    # Always a fresh instance: one left by a killed run goes first, and the scenarios as they
    # are now are built.
    "$top/scripts/lab" down --dir "${1:?DIR}"
    exec "$top/scripts/lab" up --dir "$1"
    ;;
down)
    dir=${1:?DIR}
    ns=""
    [ -r "$dir/state" ] && ns=$(sed -n 's/^LAB_NS=//p' "$dir/state")
    pids=$(awk '{ print $2 }' "$dir/pids" 2>/dev/null || true)
    status=0
    "$top/scripts/lab" down --dir "$dir" || status=1
    if [ -n "$ns" ]; then
        if [ -e "/run/netns/$ns" ]; then
            echo "FAIL: namespace $ns is still there"
            status=1
        fi
        if [ -e "/etc/netns/$ns" ]; then
            echo "FAIL: /etc/netns/$ns is still there"
            status=1
        fi
        if grep -q "/run/netns/$ns " /proc/mounts; then
            echo "FAIL: /run/netns/$ns is still mounted"
            status=1
        fi
    fi
    for pid in $pids; do
        if kill -0 "$pid" 2>/dev/null && [ "$(readlink "/proc/$pid/ns/net" 2>/dev/null)" != "$(readlink /proc/self/ns/net)" ]; then
            echo "FAIL: lab process $pid is still running"
            status=1
        fi
    done
    [ "$status" = 0 ] && echo "lab in $dir is down; nothing left behind"
    exit $status
    ;;
run | inside)
    [ $# -gt 0 ] || { echo "usage: ctest-lab.sh $cmd CMD..."; exit 2; }
    if [ -z "${LAB_ENV:-}" ] || ! [ -r "$LAB_ENV" ]; then
        echo "FAIL: the lab is not up (no env file ${LAB_ENV:-unset}); did lab_up fail?"
        exit 1
    fi
    # shellcheck disable=SC1090
    . "$LAB_ENV"
    if [ "$cmd" = inside ]; then
        exec ip netns exec "$LAB_NS" "$@"
    fi
    exec "$@"
    ;;
*)
    echo "usage: ctest-lab.sh up|down DIR | run|inside CMD..."
    exit 2
    ;;
esac
