#!/usr/bin/env bash
# Build dist/tally_<version>_amd64.deb from a release binary, with dpkg-deb (no cargo-deb: the
# package is a handful of files, and dpkg-deb is on every Debian machine, so CI builds no tool).
#
#   scripts/build-deb.sh [BINARY] [OUT_DIR]     defaults: target/release/tally, dist
#
# Contents: /usr/bin/tally (stripped); /lib/systemd/system/tally.service (contrib/); the plan
# /etc/tally/tally.toml, a conffile, generated from tally.toml with its [paths] under
# /var/lib/tally (scripts/packaged-plan.py); /usr/share/tally/{examples,templates}; the docs.
# Maintainer scripts in contrib/deb/ (systemd through deb-systemd-invoke, from the essential
# init-system-helpers): postinst makes the tally account and /var/lib/tally
# (0700); postrm purge removes them unless returns were received (see there).
set -euo pipefail
cd "$(dirname "$0")/.."

BINARY=${1:-target/release/tally}
OUT=${2:-dist}
VERSION=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
ARCH=amd64
DEB="$OUT/tally_${VERSION}_${ARCH}.deb"

[ -x "$BINARY" ] || { echo "build-deb: $BINARY: no such binary (cargo build --release --locked)" >&2; exit 1; }
for tool in dpkg-deb dpkg-shlibdeps strip /usr/bin/python3; do
  command -v "$tool" >/dev/null || { echo "build-deb: $tool is missing (apt-get install dpkg-dev binutils python3)" >&2; exit 1; }
done

ROOT=$(mktemp -d)
trap 'rm -rf "$ROOT"' EXIT
PKG="$ROOT/pkg"

install -d -m 755 "$PKG/DEBIAN" "$PKG/usr/bin" "$PKG/lib/systemd/system" "$PKG/etc/tally" \
  "$PKG/usr/share/doc/tally" "$PKG/usr/share/tally/examples"
install -m 755 "$BINARY" "$PKG/usr/bin/tally"
strip --strip-unneeded "$PKG/usr/bin/tally"
install -m 644 contrib/tally.service "$PKG/lib/systemd/system/tally.service"
/usr/bin/python3 scripts/packaged-plan.py tally.toml /var/lib/tally >"$ROOT/tally.toml"
install -m 644 "$ROOT/tally.toml" "$PKG/etc/tally/tally.toml"
install -m 644 examples/*.xlsx examples/README.md "$PKG/usr/share/tally/examples/"
cp -r templates "$PKG/usr/share/tally/templates"
install -m 644 README.md "$PKG/usr/share/doc/tally/README.md"
install -m 644 contrib/deb/copyright "$PKG/usr/share/doc/tally/copyright"
find "$PKG/usr/share" -type d -exec chmod 755 {} + && find "$PKG/usr/share" -type f -exec chmod 644 {} +
for script in postinst prerm postrm; do
  install -m 755 "contrib/deb/$script" "$PKG/DEBIAN/$script"
done
echo /etc/tally/tally.toml >"$PKG/DEBIAN/conffiles"

# Shared libraries the binary needs, as Debian names them (libc6 (>= …), libgcc-s1 …).
mkdir -p "$ROOT/shlibs/debian"
printf 'Source: tally\n\nPackage: tally\nArchitecture: %s\n' "$ARCH" >"$ROOT/shlibs/debian/control"
SHLIBS=$(cd "$ROOT/shlibs" && dpkg-shlibdeps -O "$PKG/usr/bin/tally" | sed -n 's/^shlibs:Depends=//p')
[ -n "$SHLIBS" ] || { echo "build-deb: dpkg-shlibdeps found no dependencies" >&2; exit 1; }

# Debian wants a changelog even for a native package: this release's one entry.
EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
COMMIT=$("$BINARY" --version | sed -n 's/.*(commit \(.*\))$/\1/p')
{
  printf 'tally (%s) unstable; urgency=medium\n\n' "$VERSION"
  printf '  * Release %s, built from commit %s.\n\n' "$VERSION" "${COMMIT:-unknown}"
  printf ' -- tally maintainers <tally@example.org>  %s\n' "$(LC_ALL=C date -u -R -d "@$EPOCH")"
} | gzip -9n >"$PKG/usr/share/doc/tally/changelog.gz"
chmod 644 "$PKG/usr/share/doc/tally/changelog.gz"

INSTALLED_KB=$(du -sk --exclude=DEBIAN "$PKG" | cut -f1)
cat >"$PKG/DEBIAN/control" <<CONTROL
Package: tally
Version: $VERSION
Architecture: $ARCH
Maintainer: tally maintainers <tally@example.org>
Installed-Size: $INSTALLED_KB
Depends: $SHLIBS, passwd
Section: utils
Priority: optional
Description: work-safety training returns: check, ledger, master workbook
 tally runs beside a district work-safety bureau's shared drive. Units drop
 their monthly training returns (Excel) into their own folder; the daemon
 checks every return cell by cell, keeps a durable ledger (SQLite), rewrites
 one master assessment workbook, hands each unit a receipt or a precise
 rejection, and reminds units that fall behind.
 .
 The plan is /etc/tally/tally.toml; the ledger, archive and outbox live in
 /var/lib/tally, owned by the tally account. Start the daemon with
 "systemctl enable --now tally" after editing the plan.
CONTROL
(cd "$PKG" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z \
  | xargs -0 md5sum) >"$PKG/DEBIAN/md5sums"
chmod 644 "$PKG/DEBIAN/control" "$PKG/DEBIAN/conffiles" "$PKG/DEBIAN/md5sums"

mkdir -p "$OUT"
SOURCE_DATE_EPOCH=$EPOCH dpkg-deb --root-owner-group -Zxz --build "$PKG" "$DEB" >/dev/null
echo "$DEB ($(du -h "$DEB" | cut -f1))"
