#!/usr/bin/env bash
# tests/lab/lab.sh: bring the stsgate test lab up, take it down, report its state.
# Run through scripts/lab. Usage:
#   scripts/lab up     [--dir DIR] [--name NAME]   build and start a lab instance (idempotent)
#   scripts/lab down   [--dir DIR]                 stop what `up` started, remove the namespace
#   scripts/lab status [--dir DIR]                 exit 0 when the instance is up and whole
#   scripts/lab env    [--dir DIR]                 print the path of the instance's env file
#   scripts/lab exec   [--dir DIR] CMD...          run CMD inside the lab namespace
# DIR (default /tmp/stsgate-lab, or $LAB_DIR) holds everything the instance generates: its
# configuration, certificates, zones, logs, PIDs and the env file that tests source.
# An instance is one network namespace, stslab-<name>-<random>, with every server inside it.
# Needs root (ip netns). See docs/testing.md.
set -euo pipefail

LAB_SRC=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
. "$LAB_SRC/lib/common.sh"
. "$LAB_SRC/lib/scenarios.sh"
. "$LAB_SRC/lib/pki.sh"
. "$LAB_SRC/lib/dns.sh"
. "$LAB_SRC/lib/web.sh"
. "$LAB_SRC/lib/smtp.sh"

usage() {
    sed -n '2,12s/^# \{0,1\}//p' "${BASH_SOURCE[0]}" >&2
    exit 2
}

# The state of an instance, kept in $LAB_DIR:
#   .stsgate-lab   marks the directory as a lab's (`up` only wipes such a directory)
#   state          LAB_NS=... while the namespace may exist (written first, removed last)
#   pids           "<what> <pid>" for every daemon started
#   env            written last by `up`: the instance is complete
state_read() {
    LAB_NS=""
    # shellcheck disable=SC1091
    [ -r "$LAB_DIR/state" ] && . "$LAB_DIR/state"
    return 0
}

# ns_exists: whether the namespace $LAB_NS exists (ip netns keeps them in /run/netns).
ns_exists() { [ -n "$LAB_NS" ] && [ -e "/run/netns/$LAB_NS" ]; }

# healthy: the namespace exists and every recorded daemon is alive inside it.
healthy() {
    state_read
    [ -n "$LAB_NS" ] && [ -r "$LAB_DIR/env" ] && [ -r "$LAB_DIR/pids" ] || return 1
    ns_exists || return 1
    local what pid
    while read -r what pid; do
        lab_pid_alive "$pid" || return 1
        [ "$(ip netns identify "$pid" 2>/dev/null)" = "$LAB_NS" ] || return 1
    done <"$LAB_DIR/pids"
}

# kill_pids SIGNAL PID...: signal the PIDs that still live in our namespace.
kill_pids() {
    local sig=$1 pid
    shift
    for pid in "$@"; do
        if lab_pid_alive "$pid" && [ "$(ip netns identify "$pid" 2>/dev/null)" = "$LAB_NS" ]; then
            kill "-$sig" "$pid" 2>/dev/null || true
        fi
    done
}

# wait_gone SECONDS PID...: wait until none of the PIDs is alive.
wait_gone() {
    local n=$(($1 * 10)) pid alive
    shift
    while [ "$n" -gt 0 ]; do
        alive=0
        for pid in "$@"; do lab_pid_alive "$pid" && alive=1; done
        [ "$alive" = 0 ] && return 0
        sleep 0.1
        n=$((n - 1))
    done
    return 1
}

do_down() {
    state_read
    if [ -z "$LAB_NS" ]; then
        rm -f "$LAB_DIR/env" "$LAB_DIR/pids"
        return 0
    fi
    local pids=() what pid left=0
    if [ -r "$LAB_DIR/pids" ]; then
        while read -r what pid; do pids+=("$pid"); done <"$LAB_DIR/pids"
    fi
    if ns_exists; then
        # First what `up` started, by PID; then anything those left in the namespace (Postfix
        # children exit on their own a moment after their master, ip netns pids finds the rest).
        kill_pids TERM "${pids[@]}"
        wait_gone 5 "${pids[@]}" || kill_pids KILL "${pids[@]}"
        local rest=() n
        for n in 1 2 3 4 5 6 7 8 9 10; do
            mapfile -t rest < <(ip netns pids "$LAB_NS" 2>/dev/null)
            [ ${#rest[@]} -eq 0 ] && break
            if [ "$n" -lt 5 ]; then
                sleep 0.2
            elif [ "$n" -lt 8 ]; then
                kill_pids TERM "${rest[@]}"
                sleep 0.3
            else
                kill_pids KILL "${rest[@]}"
                sleep 0.3
            fi
        done
        mapfile -t rest < <(ip netns pids "$LAB_NS" 2>/dev/null)
        if [ ${#rest[@]} -gt 0 ]; then
            lab_msg "processes still in $LAB_NS: ${rest[*]}"
            left=1
        fi
        if ! ip netns del "$LAB_NS"; then
            lab_msg "could not delete namespace $LAB_NS"
            left=1
        fi
    fi
    rm -rf "/etc/netns/$LAB_NS"
    rm -f "$LAB_DIR/env" "$LAB_DIR/pids"
    # Keep the state (the namespace's name) while something is left, so down can be run again.
    [ "$left" = 0 ] && rm -f "$LAB_DIR/state"
    return "$left"
}

# path_traversable DIR: whether everyone may search DIR and every directory above it. nginx
# workers, tinyproxy and Postfix's delivery agent run as nobody and must reach the state files.
path_traversable() {
    local d=$1 perm
    while [ "$d" != / ]; do
        perm=$(stat -c %a "$d") || return 1
        (( ${perm: -1} & 1 )) || return 1
        d=$(dirname "$d")
    done
}

# prepare_state_dir: create $LAB_DIR for `up`. When the requested path cannot be reached by
# nobody (a checkout under /root, mode 0700), the state lives in a fresh /tmp/stsgate-lab.XXXXXX
# and $LAB_DIR becomes a symbolic link to it, so DIR/env is still where the caller expects it.
prepare_state_dir() {
    local parent target
    if [ -L "$LAB_DIR" ]; then
        mkdir -p "$(readlink "$LAB_DIR")"
        return 0
    fi
    parent=$(dirname "$LAB_DIR")
    mkdir -p "$parent"
    if path_traversable "$parent"; then
        mkdir -p "$LAB_DIR"
        return 0
    fi
    if [ -d "$LAB_DIR" ]; then
        [ -z "$(ls -A "$LAB_DIR")" ] || [ -e "$LAB_DIR/.stsgate-lab" ] ||
            lab_die "$LAB_DIR is not empty and is not a lab directory; choose another --dir"
        [ -e "$LAB_DIR/state" ] && lab_die "$LAB_DIR holds a running lab: scripts/lab down --dir $LAB_DIR"
        rm -rf "$LAB_DIR"
    fi
    target=$(mktemp -d /tmp/stsgate-lab.XXXXXX)
    chmod 755 "$target"
    ln -s "$target" "$LAB_DIR"
    lab_msg "$parent is not searchable by others: the lab's files are in $target ($LAB_DIR links there)"
}

# wait_listeners: every service answers before `up` returns.
wait_listeners() {
    local want=("$LAB_RESOLVER_ADDR:53" "$LAB_FAKEDNS_ADDR:53" "$LAB_POLICY_ADDR:443"
        "$LAB_PROXY_ADDR:$LAB_PROXY_PORT")
    local name addr cert names tls reply ports p
    while read -r name addr cert names tls reply ports; do
        want+=("$addr:25")
        [ "$ports" = - ] || for p in ${ports//,/ }; do want+=("$addr:$p"); done
    done < <(lab_receivers)
    local n=100 have missing
    while [ "$n" -gt 0 ]; do
        have=$(lab_ns ss -Hltn | awk '{ print $4 }')
        missing=()
        for p in "${want[@]}"; do grep -qx "$p" <<<"$have" || missing+=("$p"); done
        [ ${#missing[@]} -eq 0 ] && return 0
        sleep 0.1
        n=$((n - 1))
    done
    lab_die "not listening after 10 s: ${missing[*]}"
}

write_env() {
    local f="$LAB_DIR/env.tmp" name addr rest recvs=() domains
    {
        echo "# stsgate lab instance $LAB_NAME, written by scripts/lab up. Source it."
        printf 'export %s=%q\n' LAB_NAME "$LAB_NAME" LAB_NS "$LAB_NS" LAB_DIR "$LAB_DIR" \
            LAB_SRC "$LAB_SRC" LAB_BIN "$LAB_SRC/bin" LAB_ENV "$LAB_DIR/env" \
            LAB_RESOLVER "$LAB_RESOLVER_ADDR" LAB_FAKEDNS "$LAB_FAKEDNS_ADDR" \
            LAB_CA_BUNDLE "$LAB_DIR/pki/ca-bundle.pem" LAB_ROOT_CA "$LAB_DIR/pki/root.crt" \
            LAB_INTER_CA "$LAB_DIR/pki/inter.crt" LAB_UNTRUSTED_CA "$LAB_DIR/pki/untrusted-ca.crt" \
            LAB_POLICY_ADDR "$LAB_POLICY_ADDR" LAB_REFUSED_ADDR "$LAB_REFUSED_ADDR" \
            LAB_PROXY_ADDR "$LAB_PROXY_ADDR" LAB_PROXY_PORT "$LAB_PROXY_PORT" \
            LAB_PROXY "http://$LAB_PROXY_ADDR:$LAB_PROXY_PORT" \
            LAB_MANIFEST "$LAB_DIR/manifest" LAB_WWW "$LAB_DIR/www"
        printf 'export LAB_ZONES=%q\n' "$(dns_zones | awk '{ printf "%s%s", s, $1; s = " " }')"
        while read -r name addr rest; do
            recvs+=("$name")
            printf 'export LAB_RECV_%s=%q\n' "$(tr 'a-z-' 'A-Z_' <<<"$name")" "$addr"
            printf 'export LAB_RECV6_%s=%q\n' "$(tr 'a-z-' 'A-Z_' <<<"$name")" "$(lab_v6_of "$addr")"
        done < <(lab_receivers)
        printf 'export LAB_RECEIVERS=%q\n' "${recvs[*]}"
        domains=$(awk '$1 == "domain" { printf "%s%s", s, $2; s = " " }' "$LAB_DIR/manifest")
        printf 'export LAB_DOMAINS=%q\n' "$domains"
    } >"$f"
    mv "$f" "$LAB_DIR/env"
}

print_usage_info() {
    # shellcheck disable=SC1091
    . "$LAB_DIR/env"
    cat <<EOF
Lab "$LAB_NAME" is up.
  namespace   $LAB_NS        (run a client: ip netns exec $LAB_NS CMD, or $LAB_BIN/lab-exec CMD)
  resolver    $LAB_RESOLVER:53   (validating unbound; /etc/netns/$LAB_NS/resolv.conf points at it)
  mock DNS    $LAB_FAKEDNS:53   (fakedns.py: forged AD, truncation, silence, bad TLSA)
  CA bundle   $LAB_CA_BUNDLE
  policies    https://mta-sts.<domain>/.well-known/mta-sts.txt on $LAB_POLICY_ADDR:443
  proxy       $LAB_PROXY
  receivers   $(for r in $LAB_RECEIVERS; do v="LAB_RECV_$(tr 'a-z-' 'A-Z_' <<<"$r")"; printf '%s=%s ' "$r" "${!v}"; done)
  env file    $LAB_DIR/env   (tests: . "\$LAB_ENV"; helpers in $LAB_BIN)
  stop it     scripts/lab down --dir $LAB_DIR
EOF
}

do_up() {
    [ "$(id -u)" = 0 ] || lab_die "the lab needs root (ip netns)"
    if healthy; then
        print_usage_info
        return 0
    fi
    do_down
    if [ -d "$LAB_DIR" ] && [ -n "$(ls -A "$LAB_DIR")" ] && ! [ -e "$LAB_DIR/.stsgate-lab" ]; then
        lab_die "$LAB_DIR is not empty and is not a lab directory; choose another --dir"
    fi
    path_traversable "$LAB_DIR" ||
        lab_die "$LAB_DIR is not reachable by unprivileged users; choose another --dir"
    local keep
    for keep in dns pki www web recv relay manifest; do rm -rf "${LAB_DIR:?}/$keep"; done
    touch "$LAB_DIR/.stsgate-lab"
    chmod 755 "$LAB_DIR"

    LAB_NS="stslab-$LAB_NAME-$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')"
    printf 'LAB_NS=%q\n' "$LAB_NS" >"$LAB_DIR/state"
    : >"$LAB_DIR/pids"
    trap 'lab_msg "up failed; cleaning up"; do_down' EXIT

    ip netns add "$LAB_NS"
    lab_ns ip link set lo up
    local addr name rest
    for addr in "$LAB_RESOLVER_ADDR" "$LAB_FAKEDNS_ADDR" "$LAB_POLICY_ADDR" "$LAB_PROXY_ADDR"; do
        lab_ns ip addr add "$addr/32" dev lo
    done
    while read -r name addr rest; do
        lab_ns ip addr add "$addr/32" dev lo
        lab_ns ip -6 addr add "$(lab_v6_of "$addr")/128" dev lo nodad ||
            lab_die "cannot add an IPv6 address in the namespace (is IPv6 disabled?)"
    done < <(lab_receivers)
    mkdir -p "/etc/netns/$LAB_NS"
    printf '# stsgate lab %s\nnameserver %s\n' "$LAB_NAME" "$LAB_RESOLVER_ADDR" \
        >"/etc/netns/$LAB_NS/resolv.conf"

    scenarios_build
    pki_build
    dns_build
    web_build
    smtp_build

    dns_start
    dns_start_fake
    web_start
    smtp_start
    wait_listeners
    write_env
    trap - EXIT
    print_usage_info
}

do_status() {
    state_read
    if healthy; then
        print_usage_info
        echo "  daemons     $(awk '{ printf "%s(%s) ", $1, $2 }' "$LAB_DIR/pids")"
        return 0
    fi
    if [ -z "$LAB_NS" ]; then
        echo "No lab in $LAB_DIR."
    else
        echo "Lab in $LAB_DIR (namespace $LAB_NS) is not whole:"
        local what pid
        while read -r what pid; do
            lab_pid_alive "$pid" && echo "  $what $pid running" || echo "  $what $pid gone"
        done < <(cat "$LAB_DIR/pids" 2>/dev/null)
        echo "Run: scripts/lab down --dir $LAB_DIR; scripts/lab up --dir $LAB_DIR"
    fi
    return 1
}

cmd=${1:-}
[ -n "$cmd" ] || usage
shift
LAB_DIR=${LAB_DIR:-$(lab_default_dir)}
LAB_NAME=""
while [ $# -gt 0 ]; do
    case "$1" in
    --dir) LAB_DIR=${2:?--dir needs a directory}; shift 2 ;;
    --name) LAB_NAME=${2:?--name needs a name}; shift 2 ;;
    --) shift; break ;;
    -*) usage ;;
    *) break ;;
    esac
done
case "$LAB_DIR" in /*) ;; *) LAB_DIR=$PWD/$LAB_DIR ;; esac
LAB_DIR=${LAB_DIR%/}
[ -n "$LAB_NAME" ] || LAB_NAME=$(basename "$LAB_DIR" | tr -c 'a-zA-Z0-9\n' '-' | cut -c1-12)
[[ $LAB_NAME =~ ^[a-zA-Z0-9-]+$ ]] || lab_die "--name: letters, digits and '-' only"
if [ "$cmd" = up ]; then
    [ "$(id -u)" = 0 ] || lab_die "the lab needs root (ip netns)"
    prepare_state_dir
fi
# From here on, the physical path: it goes into every generated configuration.
if [ -d "$LAB_DIR" ]; then
    LAB_DIR=$(cd -P "$LAB_DIR" && pwd)
fi

case "$cmd" in
up) do_up ;;
down)
    [ "$(id -u)" = 0 ] || lab_die "the lab needs root (ip netns)"
    do_down
    ;;
status) do_status ;;
env)
    [ -r "$LAB_DIR/env" ] || lab_die "no lab is up in $LAB_DIR"
    echo "$LAB_DIR/env"
    ;;
exec)
    [ $# -gt 0 ] || usage
    lab_load_env "$LAB_DIR"
    exec ip netns exec "$LAB_NS" "$@"
    ;;
*) usage ;;
esac
