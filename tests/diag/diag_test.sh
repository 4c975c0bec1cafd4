#!/bin/sh
# diag_test.sh - runs the real stsgated diagnostics and checks their first line of output and
# their exit status (reference/stsgated.md "Diagnostics").
# Usage: diag_test.sh STSGATED SECTION   (SECTION: record, policy, mx, usage)
set -u
bin=$1
section=$2
pass=0
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# check WANT_RC WANT_FIRST_LINE [ARGS...]: stdin from $input (empty when unset).
check() {
    want_rc=$1
    want=$2
    shift 2
    printf '%s' "${input-}" | "$bin" "$@" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    got=$(head -n 1 "$tmp/out")
    if [ "$rc" = "$want_rc" ] && [ "$got" = "$want" ]; then
        pass=$((pass + 1))
    else
        fail=$((fail + 1))
        echo "FAIL: stsgated $*: rc=$rc want $want_rc; first line '$got' want '$want'" >&2
        sed 's/^/  stderr: /' "$tmp/err" >&2
    fi
}

# usage_error ARGS...: exit 2, nothing on stdout, a message on stderr.
usage_error() {
    "$bin" "$@" </dev/null >"$tmp/out" 2>"$tmp/err"
    rc=$?
    if [ "$rc" = 2 ] && [ ! -s "$tmp/out" ] && [ -s "$tmp/err" ]; then
        pass=$((pass + 1))
    else
        fail=$((fail + 1))
        echo "FAIL: stsgated $*: rc=$rc want 2, empty stdout, a message on stderr" >&2
    fi
}

nl='
'
crlf=$(printf '\r')

case $section in
record)
    check 0 'valid id=20160831085700Z' check-record 'v=STSv1; id=20160831085700Z;'
    check 0 'valid id=abc' check-record 'v=STSv1;id=abc'
    check 0 'valid id=abc' check-record 'v=STSv1 ; id=abc ; ext=value;'
    check 1 'invalid: empty field (;;)' check-record 'v=STSv1; id=abc;;'
    check 1 'invalid: no id field' check-record 'v=STSv1;'
    check 1 'invalid: id must be 1 to 32 letters or digits' check-record \
        'v=STSv1; id=ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456'
    check 1 'invalid: id must be 1 to 32 letters or digits' check-record 'v=STSv1; id=a_b'
    check 1 'invalid: does not begin with v=STSv1' check-record 'v=stsv1; id=abc'
    check 1 'invalid: does not begin with v=STSv1' check-record ''
    check 1 'invalid: fields must be separated by '"';'" check-record 'v=STSv1 id=abc'
    usage_error check-record
    usage_error check-record 'v=STSv1; id=a' 'extra'
    ;;
policy)
    good="version: STSv1${nl}mode: enforce${nl}mx: mx1.example.com${nl}mx: *.example.net${nl}max_age: 604800${nl}"
    input=$good check 0 'valid mode=enforce max_age=604800 mx=mx1.example.com,*.example.net' \
        check-policy -
    input=$good check 0 'valid mode=enforce max_age=604800 mx=mx1.example.com,*.example.net' \
        check-policy
    printf '%s' "$good" >"$tmp/policy.txt"
    check 0 'valid mode=enforce max_age=604800 mx=mx1.example.com,*.example.net' \
        check-policy "$tmp/policy.txt"
    input="version: STSv1${crlf}${nl}mode: testing${crlf}${nl}mx: a.example${crlf}${nl}max_age: 31557601" \
        check 0 'valid mode=testing max_age=31557600 mx=a.example' check-policy -
    input="version: STSv1${nl}mode: none${nl}max_age: 0${nl}" \
        check 0 'valid mode=none max_age=0 mx=' check-policy -
    input="version: STSv1${nl}${nl}mode: enforce${nl}${nl}max_age: 1${nl}mx: a.example${nl}${nl}" \
        check 0 'valid mode=enforce max_age=1 mx=a.example' check-policy -
    input="version: STSv1${nl}mode: enforce${nl}max_age: 1${nl}" \
        check 1 'invalid: mode enforce needs at least one mx line' check-policy -
    input="version: STSv1${nl}mode: enforce${nl}max_age: 1${nl}mx: mücke.example${nl}" \
        check 1 'invalid: line 4: invalid mx pattern: not an A-label name (U-labels are not allowed)' \
        check-policy -
    input="version: STSv1${nl}mode: Enforce${nl}max_age: 1${nl}mx: a.example${nl}" \
        check 1 'invalid: line 2: mode must be enforce, testing or none' check-policy -
    input="" check 1 'invalid: no version: STSv1 line' check-policy -
    head -c 70000 /dev/zero | tr '\0' '\n' >"$tmp/big.txt"
    check 1 'invalid: policy is larger than 65536 bytes' check-policy "$tmp/big.txt"
    usage_error check-policy "$tmp/does-not-exist"
    usage_error check-policy a b
    ;;
mx)
    check 0 'match' match-mx mx.example.com mx.example.com
    check 0 'match' match-mx '*.example.com' MX1.Example.com.
    check 1 'no match' match-mx '*.example.com' example.com
    check 1 'no match' match-mx '*.example.com' a.b.example.com
    check 1 'no match' match-mx mx.example.com mx2.example.com
    check 1 'no match' match-mx 'mx.*.example.com' mx.a.example.com
    check 1 'no match' match-mx 127.0.0.1 127.0.0.1
    usage_error match-mx mx.example.com
    usage_error match-mx a b c
    ;;
usage)
    check 0 "stsgated $(sed -n 's/^project(stsgate VERSION \([0-9.]*\).*/\1/p' "$3")" --version
    check 0 'usage: stsgated [--data DIR] [--listen ADDR:PORT]... [--relay CIDR]... [--max-size BYTES]' --help
    for line in "check-record '<txt record>'" 'check-policy [FILE|-]' \
        'match-mx <pattern> <host>' '--version | --help' '[--sts-fetch-timeout S]'; do
        if "$bin" --help | grep -qF -- "$line"; then
            pass=$((pass + 1))
        else
            fail=$((fail + 1))
            echo "FAIL: --help does not list $line" >&2
        fi
    done
    usage_error no-such-command
    usage_error --no-such-option
    ;;
*)
    echo "unknown section $section" >&2
    exit 2
    ;;
esac

echo "$pass passed, $fail failed"
[ "$fail" = 0 ] && [ "$pass" -gt 0 ]
