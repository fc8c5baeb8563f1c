#!/usr/bin/env bash
# deps.sh -- install what mhtas needs on Debian 12 (bookworm), if missing.
#
# Used by `make deps`, `make test` and `make run`. Idempotent and quick when
# everything is present: one dpkg-query per package, nothing else. Prints one
# short line per action. Runs apt-get through sudo when not root.
#
#   MHTAS_SKIP_NPM=1 deploy/deps.sh    skip the end-to-end tests' npm packages
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

say() { printf 'deps: %s\n' "$*"; }

# Build: compiler, pkg-config, the libraries the hub links and protoc-c.
# Tests: cmocka, protoc (for --encode/--decode), redis-server, node + npm and
# chromium under xvfb for the end-to-end and console tests, valgrind.
PACKAGES=(
    build-essential pkg-config
    libuv1-dev libnghttp2-dev libhiredis-dev libprotobuf-c-dev protobuf-c-compiler protobuf-compiler
    libwebsockets-dev libwebsockets-evlib-uv libinih-dev libjansson-dev libsodium-dev
    libcmocka-dev redis-server chromium xvfb valgrind libgtk-4-dev
)
# node may come from elsewhere (NodeSource, nvm, /usr/local): only ask Debian
# for it when the commands are missing.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    PACKAGES+=(nodejs npm)
fi

# One dpkg-query for all of them (a call per package costs a second in all).
declare -A installed=()
while IFS=$'\t' read -r pkg status; do
    if [[ $status == "install ok installed" ]]; then installed[$pkg]=1; fi
done < <(dpkg-query -W -f='${Package}\t${Status}\n' "${PACKAGES[@]}" 2>/dev/null || true)
missing=()
for p in "${PACKAGES[@]}"; do
    [[ -n ${installed[$p]:-} ]] || missing+=("$p")
done

if ((${#missing[@]})); then
    if ((EUID == 0)); then
        SUDO=()
    elif command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo)
    else
        say "missing: ${missing[*]}"
        say "not root and no sudo: install them as root, then run this again" >&2
        exit 1
    fi
    # apt's own output goes to a log, shown only if a step fails.
    log=$(mktemp)
    trap 'rm -f "$log"' EXIT
    run() { "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive "$@" >"$log" 2>&1 || { cat "$log" >&2; exit 1; }; }
    say "apt-get update"
    run apt-get update
    say "apt-get install ${missing[*]}"
    run apt-get install -y --no-install-recommends "${missing[@]}"
else
    say "Debian packages: all ${#PACKAGES[@]} present"
fi

# The end-to-end tests' npm packages (tests/e2e), when they exist and are
# stale: node_modules missing, or older than package-lock.json (npm keeps
# node_modules/.package-lock.json up to date on every install).
npm_deps() { # the directory of a package.json
    local E2E=$1 name=${1#$ROOT/}
    [[ -f $E2E/package.json && ${MHTAS_SKIP_NPM:-0} != 1 ]] || return 0
    local stamp=$E2E/node_modules/.package-lock.json
    [[ -e $stamp ]] || stamp=$E2E/node_modules
    if [[ -f $E2E/package-lock.json ]]; then
        if [[ ! -e $stamp || $E2E/package-lock.json -nt $stamp ]]; then
            say "npm ci in $name"
            (cd "$E2E" && npm ci --no-audit --no-fund --loglevel=error)
        else
            say "$name node_modules: up to date"
        fi
    elif [[ ! -d $E2E/node_modules || $E2E/package.json -nt $stamp ]]; then
        say "npm install in $name (no package-lock.json)"
        (cd "$E2E" && npm install --no-audit --no-fund --loglevel=error)
    else
        say "$name node_modules: up to date"
    fi
}
npm_deps "$ROOT/tests/e2e"
npm_deps "$ROOT/tests/e2e/browser"
