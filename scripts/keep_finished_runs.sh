#!/usr/bin/env bash
# Keep what an experiment (`anchoralign experiment --output OUT`) has finished, so that it can resume on another
# machine: each finished run's test_metrics.json (and its test_predictions.json, gzipped, where the run wrote
# one) is copied from OUT/runs/<variant>-s<seed>/ to KEEP/<variant>-s<seed>/ (commit KEEP). The runner reuses a run whose test_metrics.json exists, so to resume elsewhere copy them back:
#   scripts/keep_finished_runs.sh KEEP OUT/runs    (the same copy, the other way) and rerun the experiment.
#
#   scripts/keep_finished_runs.sh runs/ablation_conll04_full/runs results/ablation_runs/conll04_full
set -euo pipefail
if [ $# -ne 2 ]; then echo "usage: $0 FROM_RUNS_DIR TO_DIR" >&2; exit 2; fi
from=$1 to=$2
if [ ! -d "$from" ]; then echo "$from: no such directory" >&2; exit 2; fi
n=0
for f in "$from"/*/test_metrics.json; do
  [ -e "$f" ] || continue
  run=$(basename "$(dirname "$f")")
  mkdir -p "$to/$run"
  cp "$f" "$to/$run/test_metrics.json"
  # the test predictions too, compressed (runs since the runner wrote them): scores can be re-read from them later
  if [ -f "$(dirname "$f")/test_predictions.json" ]; then
    gzip -9 -n -c "$(dirname "$f")/test_predictions.json" > "$to/$run/test_predictions.json.gz"
  fi
  n=$((n + 1))
done
echo "$n finished runs copied from $from to $to"
