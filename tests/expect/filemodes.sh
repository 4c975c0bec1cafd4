#!/usr/bin/env bash
# File modes of the data directory (cli.md §1, §4): whatever the umask and whatever mode the
# directory had, the data directory is 0700 and config.db, its -wal and its -shm (which hold the
# private keys of certconfig) are readable by the owner only, while the shell runs and after.
set -u
bin=$STSGATE_BIN
work="$TEST_TMP/filemodes"
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
mode() { stat -c %a "$1" 2>/dev/null || echo missing; }
# Owner-only: no permission bit for group or others.
private() { # private NAME FILE
    local m
    m=$(stat -c %a "$1" 2>/dev/null) || { check "$1 exists" yes no; return; }
    check "$1 owner-only" 0 $((8#$m & 8#077))
}

# A certificate with its key, pasted and committed under umask 000.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$work/k.pem" \
    -out "$work/c.pem" -days 30 -subj "/CN=modes.example.com" 2>/dev/null
d="$work/data"
{
    printf 'certconfig\ncertificate\npaste\nmodes\n'
    cat "$work/c.pem"
    printf '.\n'
    cat "$work/k.pem"
    printf '.\nn\n\n\ncommit\nkey\ny\n'
} | (umask 000 && "$bin" --data "$d" >"$work/out1" 2>&1)
check "paste and commit status" 0 $?
grep -q "Changes committed: " "$work/out1" && passes=$((passes + 1)) || {
    fails=$((fails + 1))
    echo "FAIL: the certificate was not committed"
}
check "data directory" 700 "$(mode "$d")"
private "$d/config.db"
grep -qa 'BEGIN PRIVATE KEY' "$d/config.db" && passes=$((passes + 1)) || {
    fails=$((fails + 1))
    echo "FAIL: the key is not in config.db"
}

# While a session is open, SQLite keeps config.db-wal and config.db-shm: owner-only too.
fifo="$work/fifo"
mkfifo "$fifo"
(umask 000 && "$bin" --data "$d" <"$fifo" >"$work/out2" 2>&1) &
pid=$!
exec 3>"$fifo"
printf 'showchanges\n' >&3
for _ in $(seq 50); do
    [ -e "$d/config.db-wal" ] && [ -e "$d/config.db-shm" ] && break
    sleep 0.1
done
private "$d/config.db-wal"
private "$d/config.db-shm"
private "$d/config.db"
exec 3>&-
wait $pid

# A data directory left open to everyone (and its database) is narrowed again.
chmod 755 "$d"
chmod 644 "$d/config.db"
printf 'showchanges\n' | "$bin" --data "$d" >"$work/out3" 2>&1
check "status over a 0755 directory" 0 $?
check "data directory narrowed" 700 "$(mode "$d")"
private "$d/config.db"

# Nothing else in the data directory is readable by others (the files users put in
# configuration/ and the agent's logs are theirs to judge).
while IFS= read -r f; do
    private "$f"
done < <(find "$d" -mindepth 1 -not -path "$d/configuration/*" -not -path "$d/logs/*")

echo "$passes passed, $fails failed"
[ $fails -eq 0 ] && [ $passes -gt 0 ]
