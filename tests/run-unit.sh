#!/usr/bin/env bash
# Runs each cmocka unit-test binary given as an argument, each in its own
# process (a crash in one does not hide the others), and prints a summary.
# Writes "unit: N passed, M failed" and exits non-zero if anything failed.
set -u
passed=0; failed=0; crashed=()
for t in "$@"; do
  out=$("$t" 2>&1); rc=$?
  p=$(printf '%s\n' "$out" | sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' | tail -1)
  f=$(printf '%s\n' "$out" | sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' | tail -1)
  passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0}))
  if [ $rc -ne 0 ] || [ -z "$p$f" ]; then
    printf '%s\n' "$out" | tail -40
    [ -z "$f" ] && { failed=$((failed + 1)); crashed+=("$t"); }
    echo "FAILED: $t (exit $rc)"
  else
    echo "ok: $t (${p:-0} tests)"
  fi
done
echo "unit: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
