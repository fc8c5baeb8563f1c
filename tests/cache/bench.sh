#!/usr/bin/env bash
# Care-summary cache benchmark (loopback, one machine):
#   1. import rate of N generated people (default 100000) through bin/mhtas-import;
#   2. bare Redis GET latency (redis-benchmark -t get -c 1) in the same run;
#   3. GetCareSummary and SearchPersons latency through care_cache
#      (bin/mhtas-cache-bench, one look-up in flight).
# Starts its own redis-server on a free port in a temporary directory.
#   MHTAS_BINDIR=bin tests/cache/bench.sh [N]
set -euo pipefail
N=${1:-100000}
BIN=${MHTAS_BINDIR:-bin}
for b in mhtas-gen-people mhtas-import mhtas-cache-bench; do
  [ -x "$BIN/$b" ] || { echo "bench: $BIN/$b not built" >&2; exit 1; }
done
DIR=$(mktemp -d /tmp/mhtas-cache-bench.XXXXXX)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$DIR" \
  --logfile "$DIR/redis.log" --daemonize yes --pidfile "$DIR/redis.pid"
trap 'redis-cli -p "$PORT" shutdown nosave >/dev/null 2>&1; rm -rf "$DIR"' EXIT
for _ in $(seq 100); do redis-cli -p "$PORT" ping >/dev/null 2>&1 && break; sleep 0.05; done

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
redis-benchmark -p "$PORT" -t get -n 100000 -c 1 -d 700 --csv | tail -1
echo "== care_cache, 1 look-up in flight"
"$BIN/mhtas-cache-bench" --port "$PORT" --people "$DIR/people.ndjson" --n 20000
