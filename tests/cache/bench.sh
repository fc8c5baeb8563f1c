#!/usr/bin/env bash
# Care-summary cache benchmark (loopback, one machine):
#   1. import rate of N generated people (default 100000) through bin/mhtas-import;
#   2. bare Redis GET latency (redis-benchmark -t get -c 1) in the same run;
#   3. GetCareSummary and SearchPersons latency through care_cache
#      (bin/mhtas-cache-bench, one look-up in flight);
#   4. the same through a real hub, as a practitioner sees it
#      (bin/mhtas-care-hub-bench: gRPC -> access rules -> Redis -> audit
#      record fdatasync'ed -> reply), with a floor (WhoAmI, GetIncident)
#      measured in the same run.
# Starts its own redis-server on a free port and its own bin/mhtas-hub
# (generated config, one borough, one operator, one practitioner, random
# tokens, journal in the temporary directory) and stops both at the end.
#   MHTAS_BINDIR=bin tests/cache/bench.sh [N]
#   MHTAS_HUB_BENCH_N=10000   calls per phase of step 4
#   MHTAS_BENCH_JOURNAL_DIR=D the hub's journal (and the fdatasync floor) in a
#                             temporary directory under D instead (e.g.
#                             /dev/shm: takes the disk out of the figures)
set -euo pipefail
N=${1:-100000}
BIN=${MHTAS_BINDIR:-bin}
for b in mhtas-gen-people mhtas-import mhtas-cache-bench mhtas-hub mhtas-care-hub-bench; do
  [ -x "$BIN/$b" ] || { echo "bench: $BIN/$b not built" >&2; exit 1; }
done
DIR=$(mktemp -d /tmp/mhtas-cache-bench.XXXXXX)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$DIR" \
  --logfile "$DIR/redis.log" --daemonize yes --pidfile "$DIR/redis.pid"
HUB_PID= JDIR=
cleanup() {
  if [ -n "$HUB_PID" ] && kill -0 "$HUB_PID" 2>/dev/null; then
    kill -TERM "$HUB_PID" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$HUB_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$HUB_PID" 2>/dev/null || true
  fi
  redis-cli -p "$PORT" shutdown nosave >/dev/null 2>&1 || true
  rm -rf "$DIR"
  [ -z "$JDIR" ] || rm -rf "$JDIR"
}
trap cleanup EXIT
for _ in $(seq 100); do redis-cli -p "$PORT" ping >/dev/null 2>&1 && break; sleep 0.05; done

echo "== machine: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%Y-%m-%dT%H:%MZ)"
echo "== generate $N people"
"$BIN/mhtas-gen-people" --count "$N" --seed 1 > "$DIR/people.ndjson"
ls -l "$DIR/people.ndjson" | awk '{printf "%d bytes\n", $5}'
echo "== import"
"$BIN/mhtas-import" --port "$PORT" --no-progress "$DIR/people.ndjson"
echo "== import again (idempotent: all unchanged)"
"$BIN/mhtas-import" --port "$PORT" --no-progress "$DIR/people.ndjson"
redis-cli -p "$PORT" info memory | grep '^used_memory_human'
redis-cli -p "$PORT" dbsize | sed 's/^/keys: /'
echo "== redis-benchmark GET, 1 client, no pipelining (baseline)"
redis-benchmark -p "$PORT" -t get -n 100000 -c 1 -d 700 --csv | tail -2
echo "== care_cache, 1 look-up in flight"
"$BIN/mhtas-cache-bench" --port "$PORT" --people "$DIR/people.ndjson" --n 20000

echo "== through the hub (bin/mhtas-hub, journal on), 1 call in flight; load average $(cut -d' ' -f1-3 /proc/loadavg)"
# A throw-away configuration: one borough, one operator, one practitioner,
# random tokens (only their hashes go in the users file).
new_token() { head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n'; }
OP_TOKEN=$(new_token)
PR_TOKEN=$(new_token)
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
mkdir -p "$DIR/hub"
if [ -n "${MHTAS_BENCH_JOURNAL_DIR:-}" ]; then
  JDIR=$(mktemp -d "$MHTAS_BENCH_JOURNAL_DIR/mhtas-bench-journal.XXXXXX")
  DATA=$JDIR
else
  DATA=$DIR/hub
fi
mkdir -p "$DATA/data"
cat > "$DIR/hub/mhtas.ini" <<INI
; written by tests/cache/bench.sh
[hub]
listen_host = 127.0.0.1
grpc_port = 0
http_port = 0
log_level = warn
users_file = users.ini
static_dir = $ROOT/client/web
data_dir = $DATA/data

[routing]
strategy = leastrecent

[borough:Bench]
provider = bench
INI
cat > "$DIR/hub/users.ini" <<INI
; written by tests/cache/bench.sh
[user:op.bench]
name = Bench Operator
role = operator
token_hash = $("$BIN/mhtas-hub" --hash-token "$OP_TOKEN")

[user:p.bench]
name = Bench Practitioner
role = practitioner
provider = bench
capacity = 3
token_hash = $("$BIN/mhtas-hub" --hash-token "$PR_TOKEN")
INI
echo "journal: $(df -T "$DATA/data" | awk 'NR==2 {print $2}') filesystem, $DATA/data"
"$BIN/mhtas-hub" --config "$DIR/hub/mhtas.ini" --set "cache.redis_port=$PORT" \
  --set hub.grpc_port=0 --set hub.http_port=0 >"$DIR/hub/stdout" 2>"$DIR/hub/hub.log" &
HUB_PID=$!
GRPC_PORT=
for _ in $(seq 150); do
  GRPC_PORT=$(sed -n 's/^MHTAS_READY .*grpc_port=\([0-9]*\).*/\1/p' "$DIR/hub/stdout")
  [ -n "$GRPC_PORT" ] && break
  kill -0 "$HUB_PID" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$GRPC_PORT" ]; then
  echo "bench: the hub did not report MHTAS_READY; its log:" >&2
  tail -n 20 "$DIR/hub/hub.log" >&2
  exit 1
fi
MHTAS_OPERATOR_TOKEN=$OP_TOKEN MHTAS_PRACTITIONER_TOKEN=$PR_TOKEN \
  "$BIN/mhtas-care-hub-bench" --port "$GRPC_PORT" --people "$DIR/people.ndjson" --borough Bench \
  --n "${MHTAS_HUB_BENCH_N:-10000}" --fsync-dir "$DATA"
echo "journal after the run: $(du -sh "$DATA/data" | cut -f1)"
kill -TERM "$HUB_PID"
wait "$HUB_PID" || { echo "bench: the hub exited with status $?; its log:" >&2; tail -n 20 "$DIR/hub/hub.log" >&2; exit 1; }
HUB_PID=
if [ -s "$DIR/hub/hub.log" ]; then
  echo "hub warnings/errors (log_level=warn): $(wc -l < "$DIR/hub/hub.log") lines"
  grep -c 'level=error' "$DIR/hub/hub.log" | sed 's/^/  errors: /' || true
fi
