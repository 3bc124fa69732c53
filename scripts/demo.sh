#!/usr/bin/env bash
# The main job: train CoNLL04 on the CPU, evaluate on test, print the scores, calibrate the confidences,
# extract from two sentences and render them as a web page.
set -euo pipefail
DATA=${1:-../shared/data}
BIN=.venv/bin
RUN=runs/demo
export OMP_WAIT_POLICY=PASSIVE HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
start=$(date +%s)
if [ -f "$RUN/checkpoint/state.pt" ]; then resume=--resume; else resume=; fi
$BIN/anchoralign train --dataset conll04 --data-dir "$DATA" --config configs/conll04-cpu.yaml --output "$RUN" $resume
$BIN/anchoralign evaluate --model "$RUN" --dataset conll04 --split test --data-dir "$DATA" \
    --predictions "$RUN/test_predictions.json" --output "$RUN/test_metrics.json"
# how far the scores can be trusted (dev, checked on test); keeps a temperature only where it helps
$BIN/anchoralign calibrate --model "$RUN" --dataset conll04 --data-dir "$DATA" --save \
    --output "$RUN/calibration_report.json"
printf '%s\n' \
  "John Smith, a spokesman for Acme Corp. in Boston, said on Monday that the company would move to Chicago." \
  "Lee Harvey Oswald killed President Kennedy in Dallas." \
  | $BIN/anchoralign extract --model "$RUN" --output "$RUN/demo_extract.jsonl"
cat "$RUN/demo_extract.jsonl"
$BIN/anchoralign render --input "$RUN/demo_extract.jsonl" --output "$RUN/demo.html" --title "anchoralign demo"
echo "demo finished in $(( $(date +%s) - start )) s; the web view of the two sentences: $RUN/demo.html"
echo "serve it: .venv/bin/anchoralign serve --model $RUN  (then open http://127.0.0.1:8000/)"
