#!/bin/sh
# tests/desk/run.sh -- the desktop client's tests: the outcome-form rules
# (C, no GTK) and the GTK client under xvfb-run against a real hub (node).
# Needs bin/mhtas-hub, bin/mhtas-desk, build/rel/libmhtas.a, xvfb-run and
# tests/e2e/node_modules. Fails (never skips) when something is missing.
set -eu
cd "$(dirname "$0")/../.."
fail=0
for need in bin/mhtas-hub bin/mhtas-desk build/rel/libmhtas.a; do
    [ -e "$need" ] || { echo "tests/desk: $need is missing" >&2; fail=1; }
done
command -v xvfb-run >/dev/null 2>&1 || { echo "tests/desk: xvfb-run is missing (apt-get install -y xvfb)" >&2; fail=1; }
[ -d tests/e2e/node_modules ] || { echo "tests/desk: tests/e2e/node_modules is missing (npm ci in tests/e2e)" >&2; fail=1; }
[ "$fail" = 0 ] || exit 1

mkdir -p build/rel/tests/desk
cc -std=c11 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
   -Ibuild/gen -Iserver -Iclient $(pkg-config --cflags libprotobuf-c) \
   tests/desk/rules_test.c client/desk/outcome_rules.c build/rel/libmhtas.a \
   $(pkg-config --libs libprotobuf-c) -lcmocka -o build/rel/tests/desk/rules_test
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
build/rel/tests/desk/rules_test 2>&1 | tee "$log" || status=1
node --test --test-concurrency=1 --test-reporter=spec tests/desk/ 2>&1 | tee -a "$log" || status=1
# One summary line for tests/run-all.sh: cmocka's and node's counts together.
p=$(sed -n -e 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' -e 's/^ℹ pass \([0-9]*\)$/\1/p' "$log" | awk '{s+=$1} END {print s+0}')
f=$(sed -n -e 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' -e 's/^ℹ fail \([0-9]*\)$/\1/p' "$log" | awk '{s+=$1} END {print s+0}')
echo "desk: $p passed, $f failed"
[ "$status" = 0 ] && [ "$f" = 0 ]
