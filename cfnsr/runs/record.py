"""The per-run record ``<run_dir>/metrics.json``: what a finished (or failed) training job leaves on disk.

The report (``cfnsr.report``) rebuilds every table from these files alone, so a sweep that crashed half-way or ran on
a cluster can still be summarised. Schema (version 1)::

    {
      "schema": 1,
      "status": "running" | "finished" | "failed" | "debug" | "interrupted",
      "error": null | "<message>",
      "interrupted": {"signal": "SIGTERM", "resume": "<command>", "resume_job": "<command>"},  # when interrupted
      "run_dir": "<absolute path>",
      "experiment": "demo",             # experiment name
      "dataset": "synthetic" | "ravdess" | "cremad" | "folder",   # data.name: part of the report's table key
      "class_names": ["neutral", ...],  # data.class_names, the confusion matrix's order (absent in older records)
      "backbone": "tiny" | "paper",
      "fusion": "cfnsr",                # fusion strategy name (conf/fusion/<name>.yaml)
      "fusion_stage": "Model",          # Late | Early | Model | Unimodal
      "fusion_display": "CFN-SR",       # row label, from the fusion YAML's display (absent in older records)
      "fusion_order": 100,              # table position, from its order (absent in older records)
      "protocol": "paper" | "clean",
      "selection": "best test epoch (paper protocol)" | "best validation epoch (clean protocol)",
      "folds": "paper",                 # fold scheme name
      "fold_scheme": {"name": "kfold", "k": 5, "path": null, "test_speakers": [[...], ...]},  # every fold's test
                                        # speakers (absent in older records; docs/corpora.md)
      "fold": 1,
      "test_actors": [1, 2, 3, 4],      # speakers: ints, or strings for a folder corpus
      "val_actors": [...],              # equal to test_actors under the paper protocol
      "train_actors": [...],            # every actor 1..24 outside test and validation
      "effective_batch": 16,            # data.batch_size x world size x accumulate_grad_batches (report row key)
      "code_version": {"package": "0.1.0", "commit": "<40 hex>" | null, "dirty": false | null},
      "code_version_previous": {...},   # only when a resume ran other code than the interrupted part
      "init_sources": {"weights": {"path": ..., "run_id": ..., "recipe_hash": ..., "split_recorded": true}},
      "seed": 1234,
      "params": 26301417,
      "gflops": 113.2,                  # per clip at the configured clip size (null if not measured)
      "paper": {"accuracy": 75.76, "params": "26.30M"} | null,
      "epochs": 70,                     # epochs trained
      "best_epoch": 12,                 # 0-based epoch of the selected checkpoint
      "test":      {"war": 0.75, "uar": 0.74, "f1": 0.73, "n": 240, "confusion": [[int] * K] * K,
                    "split_clips": 240},  # the test split's size (cfnsr.report.consistency checks n against it)
      "test_last": {...same keys...}    # the last epoch's weights on the test fold
    }

Accuracies are fractions in [0, 1]; ``war`` is micro accuracy (weighted average recall), ``uar`` macro recall,
``f1`` macro F1. ``confusion[i][j]`` counts clips of true class i predicted as j.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cfnsr.files import write_text_atomic

SCHEMA_VERSION = 2
READABLE_SCHEMAS = (1, 2)  # 1: written before run ids and recipes; still read, compared by the report as legacy
FILENAME = "metrics.json"


def write_record(run_dir: str | Path, record: dict[str, Any]) -> Path:
    """Write ``metrics.json`` atomically (temp file + rename), so a crash never leaves half a record."""
    path = Path(run_dir) / FILENAME
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps({"schema": SCHEMA_VERSION, **record}, indent=2, sort_keys=False))
    return path


def read_record(path: str | Path) -> dict[str, Any]:
    """Read one record; ``path`` is the file or its run directory."""
    path = Path(path)
    if path.is_dir():
        path = path / FILENAME
    record = json.loads(path.read_text())
    if not isinstance(record, dict) or record.get("schema") not in READABLE_SCHEMAS:
        found = record.get("schema") if isinstance(record, dict) else type(record).__name__
        raise ValueError(f"{path}: unsupported metrics schema {found!r} (this cfnsr reads {READABLE_SCHEMAS})")
    return record
