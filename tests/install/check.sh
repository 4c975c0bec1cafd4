#!/usr/bin/env bash
# check.sh BUILD_DIR - `cmake --install` into a staging directory (DESTDIR) puts what
# docs/operations.md promises where it says: both programs, runnable; the systemd unit, naming the
# installed stsgated and the installed operations page; the documentation.
set -euo pipefail
build=$1
stage=$(mktemp -d /tmp/stsgate-install-XXXXXX)
trap 'rm -rf "$stage"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

DESTDIR=$stage cmake --install "$build" >"$stage.log" 2>&1 || { cat "$stage.log" >&2; rm -f "$stage.log"; fail "cmake --install"; }
rm -f "$stage.log"

prefix=$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$build/CMakeCache.txt")
unitdir=$(sed -n 's/^STSGATE_SYSTEMD_UNITDIR:STRING=//p' "$build/CMakeCache.txt")
root=$stage$prefix
for prog in stsgate stsgated; do
    [ -x "$root/bin/$prog" ] || fail "$prefix/bin/$prog is missing or not executable"
done
"$root/bin/stsgate" --data "$stage/data" -c version | grep -q '^stsgate ' ||
    fail "the installed stsgate does not run"

unit=$root/$unitdir/stsgated.service
[ -f "$unit" ] || fail "$prefix/$unitdir/stsgated.service is missing"
exec_path=$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$unit")
[ "$exec_path" = "$prefix/bin/stsgated" ] || fail "ExecStart names $exec_path, not $prefix/bin/stsgated"
doc=$(sed -n 's|^Documentation=file://||p' "$unit")
[ -f "$stage$doc" ] || fail "Documentation= names $doc, which is not installed"
grep -q '@' "$unit" && fail "an unreplaced @VARIABLE@ in the unit"

for page in README.md operations.md cli-reference.md; do
    [ -f "$root/share/doc/stsgate/$page" ] || fail "share/doc/stsgate/$page is missing"
done
echo "install tree ok under $prefix"
