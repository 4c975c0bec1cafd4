#!/usr/bin/env bash
# The non-terminal mode (cli.md §1): a script piped into stdin gets the same prompts, `-c` runs
# one command line, and the exit status says how it went (0 fine, 1 an error line or pending
# changes discarded at the end of the input, 2 the input ended inside a command). Also EXPORT then
# IMPORT gives back the same table.
set -u
bin=$STSGATE_BIN
work="$TEST_TMP/noninteractive"
rm -rf "$work"
mkdir -p "$work"
fails=0
passes=0
check() { # check NAME WANT GOT
    if [ "$2" == "$3" ]; then
        passes=$((passes + 1))
    else
        fails=$((fails + 1))
        printf 'FAIL %s: want [%s] got [%s]\n' "$1" "$2" "$3"
    fi
}
contains() { # contains NAME FILE TEXT
    if grep -qF -- "$3" "$2"; then
        passes=$((passes + 1))
    else
        fails=$((fails + 1))
        printf 'FAIL %s: %s lacks [%s]\n' "$1" "$2" "$3"
    fi
}

d="$work/data"
# A whole dialogue from a pipe: a new entry and a commit.
printf 'destconfig\nnew\npiped.example\ny\n100\nn\nn\n1\ny\n3\nn\ny\n2\nn\nn\n\ncommit\npiped\ny\n' \
    | "$bin" --data "$d" >"$work/out1" 2>&1
check "piped dialogue status" 0 $?
contains "prompt" "$work/out1" "Enter the max concurrency limit for \"piped.example\"."
contains "default" "$work/out1" "[500]> "
contains "note" "$work/out1" "Note: DANE and MTA STS will not be enforced for domains that have SMTP Routes configured."
contains "committed" "$work/out1" "Changes committed: "
[ "$(stat -c %a "$d")" = 700 ] && passes=$((passes + 1)) || { fails=$((fails + 1)); echo "FAIL mode"; }

# -c with answers from stdin.
printf 'detail\npiped.example\n\n' | "$bin" --data "$d" -c destconfig >"$work/out2" 2>&1
check "-c status" 0 $?
contains "-c detail" "$work/out2" "    MTA STS: On"
contains "-c detail tls" "$work/out2" "    TLS: Required"

# An error line makes the status 1.
"$bin" --data "$d" -c "nosuchcommand" >"$work/out3" 2>&1
check "unknown command status" 1 $?
contains "unknown command" "$work/out3" 'Unknown command: nosuchcommand. Type "help" for a list.'

# Pending changes discarded at the end of the input: 1.
printf 'sethostname\nother.example\n' | "$bin" --data "$d" >"$work/out4" 2>&1
check "discarded status" 1 $?

# The input ends inside a command: 2, and nothing was recorded.
printf 'destconfig\nnew\nhalf.example\ny\n' | "$bin" --data "$d" >"$work/out5" 2>&1
check "ended inside status" 2 $?
"$bin" --data "$d" -c 'destconfig' </dev/null >"$work/out6" 2>&1
check "ended at the menu status" 2 $?
contains "still one entry" "$work/out6" "There are currently 1 entries configured."

# commit "comment" on one line; the rollback answer from stdin.
printf 'destconfig\nnew\nsecond.example\nn\nn\nn\nn\nn\nn\n\ncommit "one line"\nn\n' \
    | "$bin" --data "$d" >"$work/out7" 2>&1
check "one-line commit status" 0 $?
contains "one-line commit" "$work/out7" "Changes committed: "

# EXPORT then IMPORT gives back the same table.
printf 'export\nround1.ini\n\n' | "$bin" --data "$d" -c destconfig >/dev/null 2>&1
check "export status" 0 $?
printf 'list\n\n' | "$bin" --data "$d" -c destconfig >"$work/list1" 2>&1
# ... into a new data directory.
d2="$work/data2"
mkdir -p "$d2/configuration"
cp "$d/configuration/round1.ini" "$d2/configuration/"
printf 'destconfig\nimport\nround1.ini\n\ncommit\nreimport\nn\n' | "$bin" --data "$d2" >"$work/out8" 2>&1
check "import status" 0 $?
printf 'export\nround2.ini\n\n' | "$bin" --data "$d2" -c destconfig >/dev/null 2>&1
printf 'list\n\n' | "$bin" --data "$d2" -c destconfig >"$work/list2" 2>&1
if cmp -s "$d/configuration/round1.ini" "$d2/configuration/round2.ini" &&
    cmp -s "$work/list1" "$work/list2"; then
    passes=$((passes + 1))
else
    fails=$((fails + 1))
    echo "FAIL round trip"
    diff "$work/list1" "$work/list2"
fi

echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
