#!/usr/bin/env bash
# The fast-path benchmark (issue 11), one command:  scripts/bench.sh
#
# 1. builds the release load generator and SQLite ceiling (cached after the first run);
# 2. PostgreSQL ceiling: a fresh database with our migrations, seeded by scripts/bench/seed.sql,
#    then pgbench runs the bare SQL of each operation (scripts/bench/*.sql): the first notify
#    at 8 clients, the hot-row order at 32, the status read at 16, BENCH_SECS each;
# 3. ours on PostgreSQL: examples/load runs notify, notify-open-loop (at 70 % of the measured
#    notify rate, latency from each scheduled send), flash-sale, status (32 keep-alive
#    connections) and mixed against another fresh database; each scenario verifies its
#    effects and the run fails loudly if they are wrong;
# 4. the same on SQLite, its ceiling being examples/sqlite_ceiling (the same .sql files in a
#    tight loop in one process);
# 5. prints the tables. The last line is machine-readable:
#    bench: notify=<req/s> notify_p99_ms=<ms> flash=<req/s> status=<req/s> status_p99_ms=<ms>
#    (PostgreSQL; notify is the closed-loop rate, notify_p99_ms the open loop's p99 at 70 % of
#    it — the latency the issue sets a target for; flash counts accepted orders per second).
#
# Environment: BENCH_PG_URL (a database to connect to for CREATE DATABASE; default
# postgres://postgres@127.0.0.1:5432/test), BENCH_SECS (pgbench duration, default 15),
# BENCH_SQLITE=0 to skip SQLite, and any LOAD_* variable of examples/load (sizes).
# Outputs and the server logs go to target/bench/. The abuse limits are off for the run's own
# server (RATE_LIMIT=off, MAX_PENDING_ORDERS=0, MAX_PENDING_UNITS=0; see examples/load).
set -euo pipefail
cd "$(dirname "$0")/.."

PG_URL="${BENCH_PG_URL:-postgres://postgres@127.0.0.1:5432/test}"
SECS="${BENCH_SECS:-15}"
OUT=target/bench
mkdir -p "$OUT"
STAMP=$(date +%s)
CEILING_DB="wallyt_bench_ceiling_$STAMP"
RUN_DB="wallyt_bench_run_$STAMP"
db_url() { python3 -c 'import sys,urllib.parse as u; p=u.urlparse(sys.argv[1]); print(p._replace(path="/"+sys.argv[2]).geturl())' "$PG_URL" "$1"; }
psql_on() { local db=$1; shift; psql "$(db_url "$db")" -X -q -v ON_ERROR_STOP=1 "$@"; }
load1() { cut -d' ' -f1 /proc/loadavg; }
cleanup() {
  for db in "$CEILING_DB" "$RUN_DB"; do
    psql "$PG_URL" -X -q -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  done
}
trap cleanup EXIT

# pgbench comes with PostgreSQL's client tools; Debian keeps it off PATH in some packages.
if ! command -v pgbench >/dev/null; then
  PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
  [ -x "$PGBIN/pgbench" ] || { echo "bench: pgbench not found (install postgresql-client)" >&2; exit 1; }
  PATH="$PGBIN:$PATH"
fi

# Hundreds of leftover databases (old test runs) keep autovacuum's launcher busy visiting
# each one every minute: a background load that skews every figure below.
DATABASES=$(psql "$PG_URL" -X -A -t -c "SELECT COUNT(*) FROM pg_database")
if [ "$DATABASES" -gt 50 ]; then
  echo "bench: warning: $DATABASES databases on this server; autovacuum visiting them all loads the machine" >&2
fi

echo "bench: building the release examples (cached after the first run)"
cargo build --release --quiet --example load --example sqlite_ceiling
LOAD=target/release/examples/load
CEILING=target/release/examples/sqlite_ceiling

# --- PostgreSQL ceiling -------------------------------------------------------------------
CLIENTS=8
PER_CLIENT=$((SECS * 1000)) # 8,000 notifies/s before a client runs out of orders
psql "$PG_URL" -X -q -c "CREATE DATABASE $CEILING_DB"
LOAD_DATABASE_URL="$(db_url "$CEILING_DB")" "$LOAD" migrate >/dev/null
psql_on "$CEILING_DB" -v clients=$CLIENTS -v per_client=$PER_CLIENT \
  -c "CREATE TEMP TABLE bench_series AS SELECT generate_series(0, $PER_CLIENT)::bigint AS value" \
  -f scripts/bench/seed.sql \
  -c "SELECT setval('orders_id_seq', 100000000), setval('payments_id_seq', 100000000)" \
  -c "VACUUM ANALYZE" >/dev/null

# pgbench NAME SCRIPT CLIENTS [ARGS…]: prints "<tps> <p99 ms>" (p99 from its per-transaction log).
pgbench_run() {
  local name=$1 script=$2 clients=$3; shift 3
  rm -f "$OUT/pgbench_$name".[0-9]*
  pgbench -n -M prepared -c "$clients" -j 2 -T "$SECS" -f "scripts/bench/$script" \
    --log --log-prefix="$OUT/pgbench_$name" "$@" "$(db_url "$CEILING_DB")" >"$OUT/pgbench_$name.out" 2>&1 \
    || { cat "$OUT/pgbench_$name.out" >&2; return 1; }
  grep -q "number of failed transactions: 0 " "$OUT/pgbench_$name.out" \
    || { echo "bench: pgbench $name had failed transactions" >&2; cat "$OUT/pgbench_$name.out" >&2; return 1; }
  local tps p99
  tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$OUT/pgbench_$name.out")
  p99=$(cat "$OUT/pgbench_$name".[0-9]* | awk '{print $3}' | sort -n \
    | awk '{v[NR]=$1} END {i=int(NR*0.99); if (i<1) i=1; printf "%.2f", v[i]/1000}')
  rm -f "$OUT/pgbench_$name".[0-9]*
  echo "$tps $p99 $(load1)"
}

echo "bench: PostgreSQL ceiling (pgbench, ${SECS}s each; load $(load1))"
read -r C_NOTIFY C_NOTIFY_P99 L_NOTIFY < <(pgbench_run notify notify.sql $CLIENTS -D i=0)
DONE=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$OUT/pgbench_notify.out")
CONFIRMED=$(psql_on "$CEILING_DB" -Atc "SELECT count(*) - 300 FROM orders WHERE status = 'CONFIRMED'")
[ "$DONE" = "$CONFIRMED" ] || { echo "bench: $DONE notify transactions but $CONFIRMED orders confirmed" >&2; exit 1; }
read -r C_FLASH C_FLASH_P99 L_FLASH < <(pgbench_run flash hot_order.sql 32)
read -r C_STATUS C_STATUS_P99 L_STATUS < <(pgbench_run status status.sql 16)
echo "  notify $C_NOTIFY tps (load $L_NOTIFY), hot-row order $C_FLASH tps (load $L_FLASH), status $C_STATUS tps (load $L_STATUS)"

# --- ours ---------------------------------------------------------------------------------
# run_load BACKEND [DATABASE_URL]: the scenarios' output in $OUT/load_BACKEND.out.
run_load() {
  local backend=$1 url=${2:-}
  echo "bench: ours on $backend (load $(load1))"
  if ! env ${url:+LOAD_DATABASE_URL="$url"} LOAD_LOG_FILE="$OUT/server_$backend.log" "$LOAD" all \
      >"$OUT/load_$backend.out" 2>&1; then
    tail -n 30 "$OUT/load_$backend.out" >&2
    echo "bench: the $backend scenarios FAILED (see $OUT/load_$backend.out)" >&2
    exit 1
  fi
  grep -E '^(==|  verified|result)' "$OUT/load_$backend.out" | sed 's/^/  /'
}
# field BACKEND SCENARIO KEY: a value from a scenario's result line.
field() {
  sed -n "s/^result scenario=$2 backend=$1 .*$3=\([0-9.]*\).*/\1/p" "$OUT/load_$1.out"
}
psql "$PG_URL" -X -q -c "CREATE DATABASE $RUN_DB"
run_load postgres "$(db_url "$RUN_DB")"

if [ "${BENCH_SQLITE:-1}" != 0 ]; then
  echo "bench: SQLite ceiling (the same SQL in a tight loop; load $(load1))"
  SQLITE_CEILING_SECS=$(( SECS < 5 ? SECS : 5 )) "$CEILING" >"$OUT/sqlite_ceiling.out" 2>&1 \
    || { cat "$OUT/sqlite_ceiling.out" >&2; exit 1; }
  sed 's/^/  /' "$OUT/sqlite_ceiling.out"
  run_load sqlite
fi

# --- the tables ---------------------------------------------------------------------------
ratio() { python3 -c 'import sys; a,b=sys.argv[1:]; print("%.2f" % (float(a)/float(b)) if "-" not in (a, b) and a and b else "-")' "$1" "$2"; }
# fmt VALUE DECIMALS: a number rounded, or "-".
fmt() { python3 -c 'import sys; v,d=sys.argv[1:]; print("-" if v in ("", "-") else "%.*f" % (int(d), float(v)))' "$1" "$2"; }
row() { # scenario ours ours_p99 ours_load ceiling ceiling_p99 ceiling_load
  printf '| %-22s | %8s | %7s | %5s | %10s | %7s | %5s | %5s |\n' "$1" "$(fmt "$2" 0)" "$(fmt "$3" 1)" \
    "${4:--}" "$(fmt "$5" 0)" "$(fmt "$6" 1)" "${7:--}" "$(ratio "${2:--}" "${5:--}")"
}
table() { # BACKEND, then ceiling rate/p99/load of notify, flash-sale and status
  local b=$1
  printf '| %-22s | %8s | %7s | %5s | %10s | %7s | %5s | %5s |\n' scenario "ours /s" "p99 ms" load \
    "ceiling /s" "p99 ms" load ratio
  printf '| %-22s | %8s | %7s | %5s | %10s | %7s | %5s | %5s |\n' --- --- --- --- --- --- --- ---
  row notify "$(field "$b" notify rate)" "$(field "$b" notify p99_ms)" "$(field "$b" notify load1)" "$2" "$3" "$4"
  row notify-open-loop "$(field "$b" notify-open-loop rate)" "$(field "$b" notify-open-loop p99_ms)" \
    "$(field "$b" notify-open-loop load1)" - - -
  row "flash-sale (accepted)" "$(field "$b" flash-sale rate)" "$(field "$b" flash-sale p99_ms)" \
    "$(field "$b" flash-sale load1)" "$5" "$6" "$7"
  row status "$(field "$b" status rate)" "$(field "$b" status p99_ms)" "$(field "$b" status load1)" "$8" "$9" "${10}"
  row "mixed (flows)" "$(field "$b" mixed rate)" "$(field "$b" mixed p99_ms)" "$(field "$b" mixed load1)" - - -
}
echo
echo "PostgreSQL (load = the 1-minute load average when the figure was taken)"
table postgres "$C_NOTIFY" "$C_NOTIFY_P99" "$L_NOTIFY" "$C_FLASH" "$C_FLASH_P99" "$L_FLASH" \
  "$C_STATUS" "$C_STATUS_P99" "$L_STATUS"
if [ "${BENCH_SQLITE:-1}" != 0 ]; then
  sq() { sed -n "s/^ceiling scenario=$1 backend=sqlite .*$2=\([0-9.]*\).*/\1/p" "$OUT/sqlite_ceiling.out"; }
  echo
  echo "SQLite (ceiling: examples/sqlite_ceiling, the same SQL in a tight loop in one process)"
  table sqlite "$(sq notify rate)" - "$(sq notify load1)" "$(sq flash-sale rate)" - "$(sq flash-sale load1)" \
    "$(sq status rate)" - "$(sq status load1)"
fi
echo
printf 'bench: notify=%.0f notify_p99_ms=%.2f flash=%.0f status=%.0f status_p99_ms=%.2f\n' \
  "$(field postgres notify rate)" "$(field postgres notify-open-loop p99_ms)" \
  "$(field postgres flash-sale rate)" "$(field postgres status rate)" \
  "$(field postgres status p99_ms)"
