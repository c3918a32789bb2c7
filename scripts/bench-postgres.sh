#!/usr/bin/env bash
# Issue 14's scale measurement: the city set of the performance benchmark (200 units × 12
# months × 500 rows = 1.2 M rows) taken in by two watchers sharing one PostgreSQL ledger (the
# units split between them, one drop root), then one 200-row return in and the master
# published; beside it the same on the embedded SQLite ledger with one watcher. Release
# build; a PostgreSQL 15 cluster of its own on 127.0.0.1 (Debian's postgresql, run as the
# `postgres` user when this runs as root; default durability: fsync and synchronous commit on).
# Not a test: figures depend on the machine and its load.
#
#   scripts/bench-postgres.sh            # the city set
#   scripts/bench-postgres.sh --quick    # 20 units × 2 months × 50 rows: tries the script
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
UNITS=200 MONTHS=12 ROWS=500
if [ "${1:-}" = --quick ]; then UNITS=20 MONTHS=2 ROWS=50; fi
NOW=2021-01-10
HALF=$((UNITS / 2))

cargo build --release --locked --quiet --bin tally --example bench_returns
TALLY=$ROOT/target/release/tally
GEN=$ROOT/target/release/examples/bench_returns
W=${BENCH_DIR:-$ROOT/target/bench-pg}
rm -rf "$W"
mkdir -p "$W"
LOAD_START=$(uptime | sed 's/.*load average: //')

# --- the server ------------------------------------------------------------------------------
BIN=$(ls -d /usr/lib/postgresql/*/bin | sort | tail -1)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
PGROOT=$W/pg
mkdir -p "$PGROOT"
as_owner() { if [ "$(id -u)" = 0 ]; then chown -R postgres:postgres "$PGROOT"; runuser -u postgres -- "$@"; else "$@"; fi; }
as_owner "$BIN/initdb" -D "$PGROOT/data" --auth=trust --username=postgres --encoding=UTF8 --locale=C >/dev/null
printf "listen_addresses = '127.0.0.1'\nport = %s\nunix_socket_directories = '%s'\nshared_buffers = 256MB\n" \
    "$PORT" "$PGROOT" >>"$PGROOT/data/postgresql.conf"
as_owner "$BIN/pg_ctl" -D "$PGROOT/data" -l "$PGROOT/server.log" -w start >/dev/null
trap 'as_owner "$BIN/pg_ctl" -D "$PGROOT/data" -m fast -w stop >/dev/null 2>&1 || true' EXIT
"$BIN/psql" -h 127.0.0.1 -p "$PORT" -U postgres -qc 'CREATE DATABASE tally'
URL="postgres://postgres@127.0.0.1:$PORT/tally"

now_ns() { date +%s%N; }
per_s() { awk -v n="$1" -v ms="$2" 'BEGIN { if (ms == 0) ms = 1; printf "%.0f", n * 1000 / ms }'; }

echo "generating $UNITS × $MONTHS × $ROWS rows …" >&2
"$GEN" returns "$W/gen/city" "$UNITS" "$MONTHS" "$ROWS"
"$GEN" one "$W/gen/update/单位0001/单位0001-2020-12-更正.xlsx" 单位0001 2020-12 200 9001000
N=$((UNITS * MONTHS * ROWS))

# A plan folder with the city's units; `units` the share this watcher takes (TOML list).
plan() { # DIR WATCH_ROOT UNITS_TOML LEDGER_TOML
    "$GEN" plan "$1" "$UNITS" >/dev/null
    python3 - "$1/tally.toml" "$2" "$3" "$4" <<'EOF'
import sys, re
path, root, units, ledger = sys.argv[1:]
s = open(path).read()
s = re.sub(r'(?m)^watch_root = .*$', 'watch_root = "%s"' % root, s, count=1)
s = s.replace('[watch]\n', '[watch]\nunits = %s\n' % units, 1)
open(path, 'w').write(s + ledger)
EOF
}
names() { # FIRST LAST → a TOML list of unit names
    local out=() i
    for i in $(seq "$1" "$2"); do out+=("\"$(printf '单位%04d' "$i")\""); done
    (IFS=,; echo "[${out[*]}]")
}

# --- PostgreSQL, two watchers ----------------------------------------------------------------
echo "PostgreSQL: two watchers take $N rows …" >&2
SHARE=$W/share
mkdir -p "$SHARE"
plan "$W/a" "$SHARE" "$(names 1 "$HALF")" "
[ledger]
url = \"$URL\"
"
plan "$W/b" "$SHARE" "$(names $((HALF + 1)) "$UNITS")" "
[ledger]
url = \"$URL\"
"
cp -r "$W/gen/city"/. "$SHARE/"
t0=$(now_ns)
"$TALLY" --config "$W/a/tally.toml" --now "$NOW" watch --once --settle 0.01 >"$W/a.out" 2>"$W/a.err" &
PA=$!
"$TALLY" --config "$W/b/tally.toml" --now "$NOW" watch --once --settle 0.01 >"$W/b.out" 2>"$W/b.err" &
PB=$!
wait "$PA"; ta=$(( ($(now_ns) - t0) / 1000000 ))
wait "$PB"; tb=$(( ($(now_ns) - t0) / 1000000 ))
PG_MS=$(( ta > tb ? ta : tb ))
COUNTED=$("$BIN/psql" -h 127.0.0.1 -p "$PORT" -U postgres -d tally -Atc "SELECT COUNT(*) FROM rows")
cp -r "$W/gen/update"/. "$SHARE/"
t0=$(now_ns)
"$TALLY" --config "$W/a/tally.toml" --now "$NOW" watch --once --settle 0.01 >"$W/a2.out" 2>"$W/a2.err"
PG_UP_MS=$(( ($(now_ns) - t0) / 1000000 ))

# --- SQLite, one watcher ---------------------------------------------------------------------
echo "SQLite: one watcher takes $N rows …" >&2
plan "$W/s" "$W/s/watch-dirs" "[]" ""
cp -r "$W/gen/city"/. "$W/s/watch-dirs/"
t0=$(now_ns)
"$TALLY" --config "$W/s/tally.toml" --now "$NOW" watch --once --settle 0.01 >"$W/s.out" 2>"$W/s.err"
SQ_MS=$(( ($(now_ns) - t0) / 1000000 ))
cp -r "$W/gen/update"/. "$W/s/watch-dirs/"
t0=$(now_ns)
"$TALLY" --config "$W/s/tally.toml" --now "$NOW" watch --once --settle 0.01 >"$W/s2.out" 2>"$W/s2.err"
SQ_UP_MS=$(( ($(now_ns) - t0) / 1000000 ))

LOAD_END=$(uptime | sed 's/.*load average: //')
echo
echo "tally: $TALLY ($(git rev-parse --short HEAD 2>/dev/null || echo '?')), $(nproc) cores; PostgreSQL $("$BIN/postgres" --version | awk '{print $3}') on 127.0.0.1"
echo "load average (1, 5, 15 min): at start $LOAD_START; at end $LOAD_END"
echo
echo "| city set, $N rows in $((UNITS * MONTHS)) returns | PostgreSQL, two watchers | SQLite, one watcher |"
echo "| --- | --- | --- |"
echo "| all returns taken (\`watch --once\`, wall) | $PG_MS ms, $(per_s "$N" "$PG_MS") rows/s | $SQ_MS ms, $(per_s "$N" "$SQ_MS") rows/s |"
echo "| one 200-row return in, master published | $PG_UP_MS ms | $SQ_UP_MS ms |"
echo
echo "rows counted in PostgreSQL after the burst: $COUNTED (expected $N, less the superseded none)"
if [ "$COUNTED" != "$N" ]; then
    echo "row count differs" >&2
    exit 1
fi
