#!/usr/bin/env bash
# The test suite as Windows programs: cross-built for x86_64-pc-windows-gnu and run under Wine
# (tally.exe and every test binary), in a fresh Wine prefix with the ProcessPrng shim
# (prefix.sh) and \\localhost\tally mapped to a folder for the UNC test.
#
#   tests/wine/run.sh                      # the whole suite
#   tests/wine/run.sh --test windows       # one test file (any `cargo test` arguments)
#
# Needs: rustup target x86_64-pc-windows-gnu, Debian's gcc-mingw-w64-x86-64, wine and wine64.
# Tests that cannot run under Wine say why: the ignored ones in cargo's own output, the
# others (Linux programs such as LibreOffice) listed at the end from TALLY_TEST_SKIPS.
set -euo pipefail
cd "$(dirname "$0")/../.."
here=tests/wine
export WINEPREFIX=${WINEPREFIX:-/tmp/tally-wine-$$}
export WINEDEBUG=-all
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER=wine
made_prefix=""
if [ ! -f "$WINEPREFIX/drive_c/windows/system32/bcryptprimitives.dll" ]; then
  "$here/prefix.sh" "$WINEPREFIX"
  made_prefix=1
fi
share=$(mktemp -d /tmp/tally-unc.XXXXXX)
mkdir -p "$WINEPREFIX/dosdevices/unc/localhost"
ln -sfn "$share" "$WINEPREFIX/dosdevices/unc/localhost/tally"
export TALLY_TEST_UNC='\\localhost\tally'
export TALLY_TEST_SKIPS=$share.skips
: >"$TALLY_TEST_SKIPS"
cleanup() {
  wineserver -k 2>/dev/null || true
  rm -rf "$share" "$TALLY_TEST_SKIPS"
  if [ -n "$made_prefix" ]; then rm -rf "$WINEPREFIX"; fi
}
trap cleanup EXIT
# A persistent wineserver, and Wine's own services started now with no terminal or pipe of
# ours: started by a test, they would hold cargo's output pipe open after it ends.
wineserver -p </dev/null >/dev/null 2>&1
wine cmd /c exit </dev/null >/dev/null 2>&1
status=0
cargo test --locked --target x86_64-pc-windows-gnu "$@" 2>&1 | tee "$share.log" || status=$?
echo "=== Windows run: tests skipped under Wine, and why"
grep -h "^test .* ignored, " "$share.log" | sed 's/^/  /' || true
sed 's/^/  /' "$TALLY_TEST_SKIPS"
passed=$(grep -h "^test result:" "$share.log" | grep -o "[0-9]\+ passed" | awk '{s+=$1} END {print s+0}')
ignored=$(grep -h "^test result:" "$share.log" | grep -o "[0-9]\+ ignored" | awk '{s+=$1} END {print s+0}')
echo "=== Windows run: $passed passed ($(grep -c "^SKIPPED" "$TALLY_TEST_SKIPS" || true) of them skipped inside, listed above), $ignored ignored"
rm -f "$share.log"
exit $status
