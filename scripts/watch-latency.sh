#!/usr/bin/env bash
# Benchmark of `tally watch`: the time from a 500-row return landing in a unit's folder (an
# atomic rename, as a copy finishes) to the new master workbook being in place. The target is
# settle + 1 s. A release build of tally runs on a temp copy of the reference plan; the
# measuring is done by examples/watch_latency.rs, which prints one line per run and a summary.
#
#   scripts/watch-latency.sh                       # defaults: auto mode, settle 2 s, 10 runs
#   scripts/watch-latency.sh --settle 0.5 --runs 20
#   scripts/watch-latency.sh --mode poll --poll-interval 1
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --bin tally --example watch_latency
exec target/release/examples/watch_latency --tally "$PWD/target/release/tally" "$@"
