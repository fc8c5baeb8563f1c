#!/usr/bin/env bash
# demo.sh -- the demo behind `make run`.
#
# Starts a private redis-server (127.0.0.1, a free port, state under
# build/demo/redis) and bin/mhtas-hub with config/demo/mhtas.ini, waits for
# the hub's one machine-readable stdout line
#   MHTAS_READY grpc_port=N http_port=M pid=P
# then prints where to connect and the demo users' tokens. Ctrl-C stops both.
# The hub's log (stderr) goes to build/demo/hub.log.
#
#   MHTAS_DEMO_CONFIG=path   another main file (default config/demo/mhtas.ini)
#   MHTAS_HUB=path           another hub binary (default bin/mhtas-hub)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

HUB=${MHTAS_HUB:-bin/mhtas-hub}
CONFIG=${MHTAS_DEMO_CONFIG:-config/demo/mhtas.ini}
DEMO=build/demo
READY_TIMEOUT=15

say() { printf 'demo: %s\n' "$*"; }
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }

[[ -x $HUB ]] || die "$HUB not found: run make (or make run)"
[[ -f $CONFIG ]] || die "$CONFIG not found"
command -v redis-server >/dev/null || die "redis-server not found: run make deps"

mkdir -p "$DEMO/redis" "$DEMO/data"

# ------------------------------------------------------------- clean-up

REDIS_PID= HUB_PID= FORWARD_PID=
FIFO=$DEMO/hub.stdout
cleanup() {
    trap - EXIT INT TERM
    if [[ -n $HUB_PID ]] && kill -0 "$HUB_PID" 2>/dev/null; then
        kill -TERM "$HUB_PID" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$HUB_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$HUB_PID" 2>/dev/null || true
    fi
    if [[ -n $REDIS_PID ]] && kill -0 "$REDIS_PID" 2>/dev/null; then
        kill -TERM "$REDIS_PID" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$REDIS_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$REDIS_PID" 2>/dev/null || true
    fi
    [[ -n $FORWARD_PID ]] && kill "$FORWARD_PID" 2>/dev/null || true
    rm -f "$FIFO"
    [[ -n $HUB_PID || -n $REDIS_PID ]] && say "stopped"
    return 0
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ------------------------------------------------------------ free ports

# A port nothing on 127.0.0.1 answers on (good enough for a demo: a race
# with another program is possible but harmless, the start-up would fail).
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() {
    local p
    for _ in $(seq 200); do
        p=$((20000 + RANDOM % 20000))
        port_in_use "$p" || { echo "$p"; return 0; }
    done
    die "no free port found"
}

# ----------------------------------------------------------------- redis

REDIS_PORT=$(free_port)
redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$ROOT/$DEMO/redis" \
    --save "" --appendonly no --daemonize no --protected-mode yes \
    --logfile "$ROOT/$DEMO/redis/redis.log" &
REDIS_PID=$!
for _ in $(seq 50); do
    if command -v redis-cli >/dev/null; then
        [[ $(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null) == PONG ]] && break
    else
        port_in_use "$REDIS_PORT" && break
    fi
    kill -0 "$REDIS_PID" 2>/dev/null || die "redis-server exited; see $DEMO/redis/redis.log"
    sleep 0.1
done
say "redis-server on 127.0.0.1:$REDIS_PORT (pid $REDIS_PID)"

# Synthetic care summaries: deterministic people with NHS numbers in the
# 999 test range (never issued), so the demo has records on a fresh machine.
DEMO_PEOPLE=${MHTAS_DEMO_PEOPLE:-3000}
if [ -x bin/mhtas-gen-people ] && [ -x bin/mhtas-import ]; then
    bin/mhtas-gen-people --count "$DEMO_PEOPLE" --seed 1 \
        | bin/mhtas-import --host 127.0.0.1 --port "$REDIS_PORT" --no-progress - >"$DEMO/import.log" 2>&1 \
        || die "loading synthetic care summaries failed; see $DEMO/import.log"
    say "loaded $DEMO_PEOPLE synthetic care summaries ($(tail -n1 "$DEMO/import.log"))"
fi

# ------------------------------------------------------------------- hub

SETS=()
# The hub learns the Redis port once it has a [cache] section (a later
# feature); until then it would reject the unknown key.
if grep -q '^[[:space:]]*\[cache\]' "$CONFIG"; then
    SETS+=(--set "cache.redis_port=$REDIS_PORT")
fi
# The configured ports when they are free; otherwise free ones, and the
# console's origin to match.
conf_port() { sed -n "s/^[[:space:]]*$1[[:space:]]*[=:][[:space:]]*\([0-9]*\).*/\1/p" "$CONFIG" | head -n1; }
GRPC_WANT=$(conf_port grpc_port); GRPC_WANT=${GRPC_WANT:-7443}
HTTP_WANT=$(conf_port http_port); HTTP_WANT=${HTTP_WANT:-8080}
if ((GRPC_WANT != 0)) && port_in_use "$GRPC_WANT"; then
    say "port $GRPC_WANT is busy: using another for gRPC"
    SETS+=(--set hub.grpc_port=0)
fi
if ((HTTP_WANT != 0)) && port_in_use "$HTTP_WANT"; then
    say "port $HTTP_WANT is busy: using another for HTTP"
    HTTP_WANT=$(free_port)
    SETS+=(--set "hub.http_port=$HTTP_WANT"
        --set "console.allowed_origins=http://127.0.0.1:$HTTP_WANT,http://localhost:$HTTP_WANT")
fi

rm -f "$FIFO"
mkfifo "$FIFO"
"$HUB" --config "$CONFIG" "${SETS[@]}" >"$FIFO" 2>"$DEMO/hub.log" &
HUB_PID=$!
exec 3<"$FIFO"

line=
if ! IFS= read -r -t "$READY_TIMEOUT" line <&3 || [[ $line != MHTAS_READY* ]]; then
    tail -n 20 "$DEMO/hub.log" >&2 || true
    if kill -0 "$HUB_PID" 2>/dev/null; then
        die "the hub did not report ready within ${READY_TIMEOUT}s (log: $DEMO/hub.log)"
    fi
    die "the hub exited before it was ready (log: $DEMO/hub.log)"
fi
# Anything else the hub prints on stdout is passed through.
cat <&3 &
FORWARD_PID=$!
exec 3<&-

GRPC_PORT=$(sed -n 's/.*grpc_port=\([0-9]*\).*/\1/p' <<<"$line")
HTTP_PORT=$(sed -n 's/.*http_port=\([0-9]*\).*/\1/p' <<<"$line")

# ------------------------------------------------------------- the banner

# Demo tokens are demo-<role>-<n>, n counting users of that role in file
# order (config/demo/README.md); each is checked against its hash.
USERS_FILE=$(dirname "$CONFIG")/users.ini
users_table() {
    local id= name= role= hash= n
    declare -A count=()
    emit() {
        [[ -n $id && -n $role ]] || return 0
        count[$role]=$(( ${count[$role]:-0} + 1 ))
        local token="demo-$role-${count[$role]}"
        if [[ $("$HUB" --hash-token "$token") == "$hash" ]]; then
            printf '    %-20s %-13s %-12s %s\n' "$token" "$id" "$role" "$name"
        else
            printf '    %-20s %-13s %-12s %s\n' "(not a demo token)" "$id" "$role" "$name"
        fi
    }
    while IFS= read -r l; do
        l=${l%$'\r'}
        if [[ $l =~ ^\[user:(.*)\] ]]; then
            emit; id=${BASH_REMATCH[1]}; name= role= hash=
        elif [[ $l =~ ^[[:space:]]*(name|role|token_hash)[[:space:]]*=[[:space:]]*(.*[^[:space:]]) ]]; then
            case ${BASH_REMATCH[1]} in
                name) name=${BASH_REMATCH[2]} ;;
                role) role=${BASH_REMATCH[2]} ;;
                token_hash) hash=${BASH_REMATCH[2]} ;;
            esac
        fi
    done <"$USERS_FILE"
    emit
}

cat <<BANNER

  mhtas demo hub is running (pid $HUB_PID)

  Web console   http://127.0.0.1:$HTTP_PORT/
  gRPC          127.0.0.1:$GRPC_PORT  (HTTP/2 cleartext; header  authorization: Bearer <token>)
  Health        http://127.0.0.1:$HTTP_PORT/healthz    Metrics  http://127.0.0.1:$HTTP_PORT/metrics
  Redis         127.0.0.1:$REDIS_PORT  (care-summary cache, private to this demo)
  Config        $CONFIG
  Hub log       $DEMO/hub.log   (tail -f $DEMO/hub.log)

  Demo users (DEMO TOKENS ONLY: never use them anywhere real)
    token                user id       role         name
BANNER
users_table
cat <<BANNER

  Press Ctrl-C to stop the hub and Redis.

BANNER

# Until the hub exits or Ctrl-C. `wait` returns early on a trapped signal.
set +e
wait "$HUB_PID"
rc=$?
set -e
if ((rc != 0 && rc < 128)); then
    tail -n 20 "$DEMO/hub.log" >&2 || true
    die "the hub exited with status $rc (log: $DEMO/hub.log)"
fi
HUB_PID=
say "the hub exited"
