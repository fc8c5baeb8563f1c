#!/usr/bin/env bash
# Runs the end-to-end suite (tests/e2e, node's test runner) against the hub
# binary given as $1; with "browser" as $2, the console's browser tests
# (tests/e2e/browser, playwright-core + Debian's chromium) instead.
# Prints "e2e: N passed, M failed" (or "browser: ..."). With "valgrind" as
# $2, the files named after it run with the hub under valgrind's memcheck.
set -u
hub=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
suite=${2:-e2e}
if [ "$suite" = browser ]; then
  cd "$(dirname "$0")/e2e/browser" || exit 1
  files=(./*.test.mjs)
elif [ "$suite" = valgrind ]; then
  # The named files (NN-name, without .test.js) with the hub under memcheck.
  cd "$(dirname "$0")/e2e" || exit 1
  shift 2
  files=()
  for f in "$@"; do files+=("test/$f.test.js"); done
  export MHTAS_HUB_WRAPPER="valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite"
  command -v valgrind >/dev/null || { echo "valgrind is not installed (make deps)"; echo "valgrind: 0 passed, 1 failed"; exit 1; }
else
  cd "$(dirname "$0")/e2e" || exit 1
  files=(test/)
fi
if [ ! -d node_modules ]; then
  npm ci --no-audit --no-fund >/dev/null 2>&1 || npm install --no-audit --no-fund >/dev/null || exit 1
fi
out=$(mktemp)
MHTAS_HUB="$hub" node --test --test-concurrency=1 --test-reporter=spec "${files[@]}" 2>&1 | tee "$out"
rc=${PIPESTATUS[0]}
p=$(sed -n 's/^ℹ pass \([0-9]*\)$/\1/p' "$out" | tail -1)
f=$(sed -n 's/^ℹ fail \([0-9]*\)$/\1/p' "$out" | tail -1)
rm -f "$out"
echo "$suite: ${p:-0} passed, ${f:-0} failed"
[ "$rc" -eq 0 ] && [ -n "$p" ] && [ "${f:-0}" -eq 0 ]
