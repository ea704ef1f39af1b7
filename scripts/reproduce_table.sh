#!/usr/bin/env bash
# The comparison table end to end: stage 1 (unimodal per fold), stage 2 (every fusion per fold, initialised from
# stage 1), for both protocols, then the report. Paper scale on a GPU machine with RAVDESS:
#   scripts/reproduce_table.sh "data=ravdess backbone=paper trainer=gpu" 1,2,3,4,5,6 70
# Synthetic corpus, tiny backbones, on a CPU (what the README's figures used):
#   scripts/reproduce_table.sh "data=synthetic backbone=tiny trainer=cpu data.batch_size=16" 1,2,3 3
set -euo pipefail
SETTINGS=${1:-"data=synthetic backbone=tiny trainer=cpu data.batch_size=16"}
FOLDS=${2:-1,2,3}
EPOCHS=${3:-3}
OUT=${OUT:-outputs/table}
# Every fusion YAML on the search path (conf/fusion, plus any hydra.searchpath=[...] in SETTINGS), in table order.
# shellcheck disable=SC2086
UNIMODAL=$(python -m cfnsr.models.fusion.registry --kind unimodal $SETTINGS)
# shellcheck disable=SC2086
FUSIONS=$(python -m cfnsr.models.fusion.registry --kind fused $SETTINGS)
for PROTOCOL in paper clean; do
  # shellcheck disable=SC2086
  python train.py -m experiment=paper_unimodal $SETTINGS protocol=$PROTOCOL fold=$FOLDS \
    fusion=$UNIMODAL trainer.max_epochs=$EPOCHS trainer.enable_progress_bar=false \
    hydra.sweep.dir=$OUT/$PROTOCOL/unimodal
  # shellcheck disable=SC2086
  python train.py -m experiment=paper_fusion $SETTINGS protocol=$PROTOCOL fold=$FOLDS \
    fusion=$FUSIONS trainer.max_epochs=$EPOCHS trainer.enable_progress_bar=false \
    init.from_runs=$OUT/$PROTOCOL/unimodal hydra.sweep.dir=$OUT/$PROTOCOL/fusion
done
python -m cfnsr.report --split --out "$OUT" "$OUT/paper" "$OUT/clean"
