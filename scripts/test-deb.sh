#!/usr/bin/env bash
# Install, use and remove the .deb for real (root; systemd need not run):
#   1. dpkg -i: files, owners and modes; the tally account; the conffile; `tally --version`;
#      `tally --config /etc/tally/tally.toml status` as the tally user; a reinstall keeps an
#      edited plan; dpkg -r keeps plan, data and account; dpkg -P leaves nothing behind.
#   2. README's Linux install steps, exactly as written there (the block after the marker
#      `<!-- test-deb: linux -->`), the service started from its unit file when systemd is not
#      running; then dpkg -P keeps the returns received and the account, as postrm says.
#
#   scripts/test-deb.sh [dist/tally_<version>_amd64.deb]
#
# Refuses to run where tally is installed, or a tally account, /etc/tally or /var/lib/tally
# exists: it would remove them.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD

VERSION=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
DEB=$(realpath "${1:-dist/tally_${VERSION}_amd64.deb}")
[ -f "$DEB" ] || { echo "test-deb: $DEB: no such package (scripts/build-deb.sh)" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "test-deb: run as root (dpkg -i)" >&2; exit 1; }

if dpkg-query -W -f='${Status}' tally 2>/dev/null | grep -q installed \
  || getent passwd tally >/dev/null || getent group tally >/dev/null \
  || [ -e /etc/tally ] || [ -e /var/lib/tally ]; then
  echo "test-deb: tally is installed here already (package, account, /etc/tally or /var/lib/tally); not touching it" >&2
  exit 1
fi

DAEMON_PID=""
WORK=$(mktemp -d)
cleanup() {
  local rc=$?
  if [ -n "$DAEMON_PID" ]; then kill "$DAEMON_PID" 2>/dev/null || true; fi
  dpkg --purge tally >/dev/null 2>&1 || true
  rm -rf /var/lib/tally /etc/tally "$WORK"
  userdel tally 2>/dev/null || true
  groupdel tally 2>/dev/null || true
  [ "$rc" = 0 ] && echo "test-deb: all checks passed" || echo "test-deb: FAILED" >&2
  exit "$rc"
}
trap cleanup EXIT

fail() { echo "test-deb: FAIL: $*" >&2; exit 1; }
ok() { echo "test-deb: ok: $*"; }

# dpkg refuses at once while another dpkg or apt holds its lock (other jobs on this machine).
dpkg_() {
  local out
  for _ in $(seq 1 60); do
    if out=$(dpkg "$@" 2>&1); then
      [ -z "$out" ] || echo "$out"
      return 0
    fi
    if grep -q "lock" <<<"$out"; then sleep 5; continue; fi
    echo "$out" >&2
    return 1
  done
  fail "dpkg lock held for 5 minutes"
}

# expect PATH TYPE OWNER:GROUP MODE
expect() {
  local path=$1 type=$2 owner=$3 mode=$4 got
  [ -e "$path" ] || fail "$path is missing"
  if [ "$type" = d ]; then [ -d "$path" ] || fail "$path is not a folder"; else [ -f "$path" ] || fail "$path is not a file"; fi
  got=$(stat -c '%U:%G %a' "$path")
  [ "$got" = "$owner $mode" ] || fail "$path is $got, want $owner $mode"
}

gone() {
  local p
  for p in "$@"; do [ ! -e "$p" ] || fail "$p is still there"; done
}

account_is_system() {
  local entry uid shell home
  entry=$(getent passwd tally) || fail "no tally account"
  uid=$(cut -d: -f3 <<<"$entry"); home=$(cut -d: -f6 <<<"$entry"); shell=$(cut -d: -f7 <<<"$entry")
  [ "$uid" -lt 1000 ] || fail "tally is uid $uid, not a system account"
  [ "$home" = /var/lib/tally ] || fail "tally's home is $home"
  [ "$shell" = /usr/sbin/nologin ] || fail "tally's shell is $shell"
  getent group tally >/dev/null || fail "no tally group"
}

echo "=== 1. install, check, remove, purge: $DEB"
dpkg-deb --info "$DEB" | sed -n '/Package:/,$p'
dpkg-deb --contents "$DEB"
dpkg_ -i "$DEB"
account_is_system
expect /usr/bin/tally f root:root 755
expect /lib/systemd/system/tally.service f root:root 644
expect /etc/tally d root:root 755
expect /etc/tally/tally.toml f root:root 644
expect /var/lib/tally d tally:tally 700
expect /usr/share/tally/examples/西兴街道-2020-05.xlsx f root:root 644
expect /usr/share/tally/templates/mail/receipt.txt f root:root 644
expect /usr/share/doc/tally/copyright f root:root 644
expect /usr/share/doc/tally/changelog.gz f root:root 644
dpkg-query -W -f='${Conffiles}\n' tally | grep -q '^ /etc/tally/tally.toml ' || fail "tally.toml is not a conffile"
grep -q '^state = "/var/lib/tally/state/tally.db"' /etc/tally/tally.toml || fail "the packaged plan's state is not under /var/lib/tally"
ok "files, owners, modes, account, conffile"
# postinst made the units' drop folders (as the tally account), with their 报表模板 folders.
for unit in 西兴街道 长河街道 浦沿街道 江北科技园; do
  expect "/var/lib/tally/watch-dirs/$unit/报表模板" d tally:tally 755
done
ok "the units' drop folders"

version=$(tally --version)
[[ "$version" == "tally $VERSION (commit "?*")" ]] || fail "tally --version: $version"
ok "$version"

# The brief's command, as the account the service runs as (from a folder it cannot read).
(cd /root 2>/dev/null || cd /; runuser -u tally -- tally --config /etc/tally/tally.toml --now 2020-07-01 status) >"$WORK/status.txt"
grep -q 西兴街道 "$WORK/status.txt" || fail "status names no unit: $(cat "$WORK/status.txt")"
runuser -u tally -- tally --config /etc/tally/tally.toml --now 2020-07-01 status --json >"$WORK/status.json"
/usr/bin/python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))
assert s["year"] == 2020 and len(s["units"]) == 4, s
' "$WORK/status.json" || fail "status --json"
expect /var/lib/tally/state d tally:tally 700
expect /var/lib/tally/state/tally.db f tally:tally 600
ok "status as the tally account; the ledger owner-only"

# A reinstall keeps the bureau's edits to the plan.
echo "# edited by the bureau" >>/etc/tally/tally.toml
dpkg_ -i "$DEB"
tail -n 1 /etc/tally/tally.toml | grep -q "edited by the bureau" || fail "reinstall replaced the edited plan"
ok "reinstall keeps an edited plan"

mapfile -t FILES < <(dpkg-query -L tally | while read -r p; do [ -f "$p" ] && echo "$p"; done)
[ "${#FILES[@]}" -gt 10 ] || fail "dpkg -L lists ${#FILES[@]} files"
dpkg_ -r tally
gone /usr/bin/tally /lib/systemd/system/tally.service /usr/share/tally
[ -f /etc/tally/tally.toml ] || fail "dpkg -r removed the plan (a conffile)"
[ -d /var/lib/tally/state ] || fail "dpkg -r removed the data"
account_is_system
ok "dpkg -r: binary gone; plan, data and account kept"
dpkg_ -P tally
gone /etc/tally /var/lib/tally "${FILES[@]}"
! getent passwd tally >/dev/null || fail "dpkg -P kept the tally account (no returns were received)"
! getent group tally >/dev/null || fail "dpkg -P kept the tally group"
! dpkg-query -W -f='${Status}' tally 2>/dev/null | grep -q installed || fail "still installed"
ok "dpkg -P: nothing left"

echo "=== 2. README's Linux install steps, as written"
STEPS="$WORK/readme-linux.sh"
awk '/<!-- test-deb: linux -->/ { on = 1; next } on && /^```sh/ { inblock = 1; next }
     inblock && /^```/ { exit } inblock { print }' README.md >"$STEPS"
[ -s "$STEPS" ] || fail "README.md has no block after <!-- test-deb: linux -->"
grep -q "tally_${VERSION}_amd64.deb" "$STEPS" || fail "README's steps do not install tally_${VERSION}_amd64.deb"
cat "$STEPS"
cp "$DEB" "$WORK/"

# What the steps assume of the machine, where it is missing here: sudo (we are root) and a
# running systemd (started as systemd would: the unit's user, folder and command line).
SHIMS="$WORK/shims.sh"
cat >"$SHIMS" <<'SHIM'
if ! command -v sudo >/dev/null; then
  sudo() {
    if [ "$1" = -u ]; then local u=$2; shift 2; runuser -u "$u" -- "$@"; else "$@"; fi
  }
fi
if [ ! -d /run/systemd/system ]; then
  systemctl() {
    [ "$*" = "enable --now tally" ] || { echo "systemctl shim: only 'enable --now tally'" >&2; return 1; }
    local unit=/lib/systemd/system/tally.service user dir exec
    user=$(sed -n 's/^User=//p' "$unit"); dir=$(sed -n 's/^WorkingDirectory=//p' "$unit")
    exec=$(sed -n 's/^ExecStart=//p' "$unit")
    (cd "$dir" && exec setpriv --reuid="$user" --regid="$user" --init-groups $exec) \
      >"$SHIM_LOG" 2>&1 &
    echo $! >"$SHIM_PID"
  }
fi
SHIM
export SHIM_LOG="$WORK/daemon.log" SHIM_PID="$WORK/daemon.pid"
HOME_DIR="$WORK/home"
mkdir -p "$HOME_DIR"
(cd "$WORK" && HOME="$HOME_DIR" bash -euo pipefail -c "source '$SHIMS'; source '$STEPS'") \
  || { cat "$SHIM_LOG" 2>/dev/null; fail "README's Linux steps failed"; }
DAEMON_PID=$(cat "$SHIM_PID" 2>/dev/null || true)
expect /var/lib/tally/watch-dirs/西兴街道/已接收/西兴街道-2020-05.xlsx f tally:tally 644
/usr/bin/python3 - "$HOME_DIR/master.xlsx" <<'PY' || fail "the master copied out of /var/lib/tally"
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    wb = z.read("xl/workbook.xml").decode()
assert "考核指标完成情况" in wb, wb[:300]
PY
ok "README's steps: installed, started, the return taken, the master copied out"
if [ -n "$DAEMON_PID" ]; then
  kill -TERM "$DAEMON_PID"
  for _ in $(seq 1 50); do kill -0 "$DAEMON_PID" 2>/dev/null || break; sleep 0.2; done
  ! kill -0 "$DAEMON_PID" 2>/dev/null || fail "the daemon did not stop on SIGTERM"
  wait "$DAEMON_PID" 2>/dev/null || true
  DAEMON_PID=""
fi

# Purging after returns were received keeps them, and the account that owns them.
dpkg_ -P tally 2>&1 | tee "$WORK/purge.txt"
grep -q "kept /var/lib/tally" "$WORK/purge.txt" || fail "purge did not say it kept /var/lib/tally"
gone /etc/tally /usr/bin/tally
[ -n "$(find /var/lib/tally/archive -path '*/2020-05/*' -type f)" ] || fail "purge removed the archive"
account_is_system
ok "dpkg -P with returns received: archive and account kept, plan gone"
# The way postrm's message says to delete them.
rm -rf /var/lib/tally && userdel tally
gone /var/lib/tally
! getent passwd tally >/dev/null || fail "userdel tally"
! getent group tally >/dev/null || fail "userdel tally left the group"
ok "removed by hand as postrm says"
