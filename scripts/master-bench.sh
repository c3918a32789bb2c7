#!/bin/sh
# Time and peak memory (GNU time -v) of `tally rebuild` on a ledger of 20,600 roster rows (the
# reference plan's year) and of 1,100,000 (past one Excel sheet). Extra arguments are row
# counts to try instead, e.g.  scripts/master-bench.sh 2000000
set -eu
cd "$(dirname "$0")/.."
[ -x /usr/bin/time ] || { echo "master-bench: needs GNU time at /usr/bin/time (apt-get install time)" >&2; exit 2; }
exec cargo bench --bench master-bench -- "$@"
