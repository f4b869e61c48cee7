#!/usr/bin/env bash
# bench/micro/check_allocations.sh FANOUT_BENCH: runs the fan-out micro
# benchmark briefly (CTest "bench.fanout_allocations") and fails unless a
# message to 1,000 and to 10,000 subscribers costs the same number of heap
# allocations: the frame is encoded once and shared, so allocations per
# recipient are ~0. Allocation counts do not depend on timing.
set -euo pipefail
out=$("$1" --benchmark_min_time=0.05 --benchmark_filter='BM_Fanout/(1000|10000)$' --benchmark_format=json)
per_message() { # per_message N: allocs_per_message of BM_Fanout/N
  printf '%s\n' "$out" | tr -d '\n ' | sed -n "s/.*\"name\":\"BM_Fanout\/$1\"[^}]*\"allocs_per_message\":\([0-9.e+-]*\).*/\1/p"
}
small=$(per_message 1000)
large=$(per_message 10000)
echo "allocations per message: 1,000 subscribers: $small, 10,000 subscribers: $large"
[ -n "$small" ] && [ -n "$large" ] || { echo "FAIL: no allocs_per_message in the output"; printf '%s\n' "$out"; echo "0 passed, 1 failed"; exit 1; }
# 9,000 more recipients may not add even one allocation per 100 of them.
if awk -v s="$small" -v l="$large" 'BEGIN { exit !((l - s) < 90) }'; then
  echo "1 passed, 0 failed"
else
  echo "FAIL: allocations grow with the recipients"
  echo "0 passed, 1 failed"
  exit 1
fi
