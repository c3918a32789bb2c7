#!/usr/bin/env bash
# Build the release artefacts into dist/ (one command):
#   dist/tally-<version>-windows-x64.zip   tally.exe, tally.toml, templates/, examples/,
#                                          使用说明.txt, 安装服务.cmd, 卸载服务.cmd, README.md, windows.md
#   dist/tally_<version>_amd64.deb         scripts/build-deb.sh
#   dist/tally-<version>-linux-x64.tar.gz  tally, tally.toml, templates/, examples/, README.md, tally.service
#   dist/SHA256SUMS
#
#   scripts/release.sh                 all of them (installs the Windows target and mingw-w64 when missing)
#   scripts/release.sh --no-windows    the .deb and the tarball only (CI's lean stage)
#
# Release builds of both targets (`cargo build --release --locked`); tally --version in them
# names the commit (build.rs). Archives carry fixed owners and the commit's time, so the same
# commit and toolchain give the same archive contents.
set -euo pipefail
cd "$(dirname "$0")/.."

WINDOWS=1
case "${1:-}" in
"") ;;
--no-windows) WINDOWS=0 ;;
*) echo "usage: scripts/release.sh [--no-windows]" >&2; exit 2 ;;
esac

VERSION=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
WIN_TARGET=x86_64-pc-windows-gnu
DIST=dist
# The archives' timestamps: the commit's time. Not exported: the cc crate's build scripts
# (SQLite, ring, zstd) rerun when SOURCE_DATE_EPOCH changes, so cargo must not see it.
EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
unset SOURCE_DATE_EPOCH
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

timed() {
  local start=$SECONDS
  "$@"
  echo "release: $* took $((SECONDS - start)) s"
}

if [ "$WINDOWS" = 1 ]; then
  if ! rustup target list --installed | grep -qx "$WIN_TARGET"; then
    rustup target add "$WIN_TARGET"
  fi
  if ! command -v x86_64-w64-mingw32-gcc >/dev/null; then
    $SUDO apt-get update
    $SUDO apt-get install -y --no-install-recommends gcc-mingw-w64-x86-64
  fi
fi

timed cargo build --release --locked
if [ "$WINDOWS" = 1 ]; then
  timed cargo build --release --locked --target "$WIN_TARGET"
fi

rm -rf "$DIST"
mkdir -p "$DIST"
STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT

# What both archives carry beside the binary: the plan, the templates, the example returns.
common_files() {
  local dir=$1
  install -d "$dir/examples"
  install -m 644 tally.toml README.md "$dir/"
  cp -r templates "$dir/templates"
  install -m 644 examples/*.xlsx examples/README.md "$dir/examples/"
  find "$dir" -type d -exec chmod 755 {} + && find "$dir" -type f -exec chmod 644 {} +
}

# 1. The .deb.
SOURCE_DATE_EPOCH=$EPOCH scripts/build-deb.sh target/release/tally "$DIST"

# 2. The Linux tarball: one folder, a plan folder ready for `./tally init`.
LINUX_NAME="tally-$VERSION-linux-x64"
common_files "$STAGE/$LINUX_NAME"
install -m 644 contrib/tally.service "$STAGE/$LINUX_NAME/"
install -m 755 target/release/tally "$STAGE/$LINUX_NAME/tally"
strip --strip-unneeded "$STAGE/$LINUX_NAME/tally"
tar -C "$STAGE" --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$EPOCH" \
  -cf - "$LINUX_NAME" | gzip -9n >"$DIST/$LINUX_NAME.tar.gz"

# 3. The Windows zip: no top folder (Explorer's "Extract All" makes one named after the zip).
if [ "$WINDOWS" = 1 ]; then
  EXE="target/$WIN_TARGET/release/tally.exe"
  # The exe must need no MinGW runtime DLL (libgcc_s_seh-1, libwinpthread-1, libstdc++-6):
  # a clerk's PC has only Windows' own.
  if x86_64-w64-mingw32-objdump -p "$EXE" | grep -i "DLL Name:" | grep -i "lib.*\.dll"; then
    echo "release: $EXE imports a MinGW runtime DLL (above); it would not start on a clean Windows" >&2
    exit 1
  fi
  WIN="$STAGE/windows"
  common_files "$WIN"
  install -m 644 "$EXE" "$WIN/tally.exe"
  # strip writes the time into the PE header unless given one.
  SOURCE_DATE_EPOCH=$EPOCH x86_64-w64-mingw32-strip --strip-unneeded "$WIN/tally.exe"
  install -m 644 contrib/windows.md "$WIN/windows.md"
  /usr/bin/python3 - "$WIN" contrib/zip <<'PY'
import pathlib, sys
out, src = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
crlf = lambda t: t.replace("\r\n", "\n").replace("\n", "\r\n")
# Batch files are parsed in the console's code page: 936 (GBK) on Chinese Windows.
for name in ("安装服务.cmd", "卸载服务.cmd"):
    (out / name).write_bytes(crlf((src / name).read_text("utf-8")).encode("gbk"))
# Notepad reads UTF-8 with a BOM on every Windows version.
name = "使用说明.txt"
(out / name).write_bytes(b"\xef\xbb\xbf" + crlf((src / name).read_text("utf-8")).encode("utf-8"))
PY
  /usr/bin/python3 - "$WIN" "$DIST/tally-$VERSION-windows-x64.zip" "$EPOCH" <<'PY'
import pathlib, sys, time, zipfile
root, dest = pathlib.Path(sys.argv[1]), sys.argv[2]
stamp = time.gmtime(max(int(sys.argv[3]), 315532800))[:6]
with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        # Non-ASCII names get the UTF-8 flag (bit 11) from zipfile: Explorer, 7-Zip and
        # Bandizip show 安装服务.cmd, not mojibake.
        info = zipfile.ZipInfo(path.relative_to(root).as_posix(), stamp)
        info.external_attr = 0o644 << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        z.writestr(info, path.read_bytes(), compresslevel=9)
PY
fi

(
  cd "$DIST"
  files=()
  for f in *.zip *.deb *.tar.gz; do [ -f "$f" ] && files+=("$f"); done
  sha256sum -- "${files[@]}" >SHA256SUMS
)
echo "release: tally $VERSION, commit $(target/release/tally --version | sed -n 's/.*(commit \(.*\))/\1/p')"
ls -l "$DIST"
cat "$DIST/SHA256SUMS"
