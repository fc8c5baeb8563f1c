#!/usr/bin/env bash
# The README's test command runs this (through `make test`): every test, in
# a release build and again under AddressSanitizer + UndefinedBehaviorSanitizer.
# The last line is the plain summary CI reads: "N passed, M failed".
set -u
cd "$(dirname "$0")/.."
total_p=0; total_f=0; status=0
summ() { # parses "x: N passed, M failed" lines from a log
  local p f
  p=$(sed -n 's/^[a-z0-9-]*: \([0-9]*\) passed, \([0-9]*\) failed$/\1/p' "$1" | awk '{s+=$1} END {print s+0}')
  f=$(sed -n 's/^[a-z0-9-]*: \([0-9]*\) passed, \([0-9]*\) failed$/\2/p' "$1" | awk '{s+=$1} END {print s+0}')
  total_p=$((total_p + p)); total_f=$((total_f + f))
}
run() { # name, command...
  local name=$1; shift
  local log; log=$(mktemp)
  echo "== $name"
  "$@" 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  summ "$log"; rm -f "$log"
  if [ "$rc" -ne 0 ]; then echo "== $name FAILED (exit $rc)"; status=1; fi
}
jobs=${MAKEFLAGS_JOBS:-2}
run "build" make --no-print-directory -j"$jobs" all
run "unit tests" make --no-print-directory -j"$jobs" unit
run "cache tests (real redis)" make --no-print-directory cache-test
run "end-to-end tests" tests/run-e2e.sh bin/mhtas-hub
run "browser tests (chromium)" tests/run-e2e.sh bin/mhtas-hub browser
run "desktop client (GTK 4 under xvfb)" tests/desk/run.sh
run "end-to-end tests, hub under valgrind" make --no-print-directory valgrind
# The load test's own checks and a seconds-long smoke run: every leg must
# complete without errors (timings are for `make bench`, never asserted).
run "load test self-test" sh -c 'bin/mhtas-loadtest --self-test && echo "loadtest-selftest: 1 passed, 0 failed"'
run "load test smoke" bin/mhtas-loadtest --hub bin/mhtas-hub --smoke
if [ "${MHTAS_SKIP_SANITIZE:-0}" != 1 ]; then
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  run "build (ASan+UBSan)" make --no-print-directory -j"$jobs" SANITIZE=1 all
  run "unit tests (ASan+UBSan)" make --no-print-directory -j"$jobs" SANITIZE=1 unit
  run "cache tests (real redis, ASan+UBSan)" make --no-print-directory SANITIZE=1 cache-test
  # The kill test's 200 SIGKILLs run in the release pass; 30 here keep the
  # sanitizer pass within CI's budget while still crashing mid-write.
  run "end-to-end tests (ASan+UBSan)" env MHTAS_KILLS="${MHTAS_SAN_KILLS:-30}" tests/run-e2e.sh build/san/bin/mhtas-hub
else
  echo "== sanitizer pass NOT run (MHTAS_SKIP_SANITIZE=1)"
fi
echo
echo "all: $total_p passed, $total_f failed"
if [ "$status" -ne 0 ] || [ "$total_f" -ne 0 ]; then exit 1; fi
