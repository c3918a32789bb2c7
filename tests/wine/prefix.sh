#!/usr/bin/env bash
# Make a fresh Wine prefix in which Rust programs built for x86_64-pc-windows-gnu run: Wine 8.0
# lacks bcryptprimitives.dll!ProcessPrng, which Rust's std imports, so a test-only stand-in
# (processprng.c) is built with mingw-w64 and put into the prefix's system32. Never shipped.
#
#   tests/wine/prefix.sh /tmp/tally-wine     # then: WINEPREFIX=/tmp/tally-wine wine prog.exe
set -euo pipefail
prefix=${1:?usage: prefix.sh WINEPREFIX}
here=$(cd "$(dirname "$0")" && pwd)
export WINEPREFIX=$prefix WINEDEBUG=-all WINEARCH=win64
# No Mono/Gecko prompts, no desktop integration: a bare prefix.
export WINEDLLOVERRIDES="mscoree,mshtml,winemenubuilder.exe="
wineboot --init >/dev/null 2>&1
wineserver -w
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
x86_64-w64-mingw32-gcc -O2 -shared -o "$out/bcryptprimitives.dll" \
  "$here/processprng.c" "$here/bcryptprimitives.def" -ladvapi32
cp "$out/bcryptprimitives.dll" "$prefix/drive_c/windows/system32/bcryptprimitives.dll"
echo "wine prefix ready: $prefix ($(wine --version))"
