"""``python -m cfnsr.search table|export <sweep_dir> ...``: a search's trial table, or its chosen settings as an
experiment config (docs/hparams_search.md)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from cfnsr.search.export import export_experiment
from cfnsr.search.study import SearchError, load_study, write_table


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m cfnsr.search", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("table", help="print the trial table and save trials.md / trials.csv in the sweep folder")
    t.add_argument("sweep_dir", type=Path)
    t.add_argument("--study", default=None, help="study name (default: the only study in <sweep_dir>/optuna.db)")
    e = sub.add_parser("export", help="write conf/experiment/<name>.yaml with the best (or a chosen) trial's settings")
    e.add_argument("sweep_dir", type=Path)
    e.add_argument("--name", default=None, help="experiment name (default: tuned_<study>)")
    e.add_argument("--trial", type=int, default=None, help="a completed trial's number (default: the best)")
    e.add_argument("--study", default=None, help="study name (default: the only study in <sweep_dir>/optuna.db)")
    e.add_argument("--config-dir", type=Path, default=Path("conf"), help="config folder to write into (conf)")
    e.add_argument("--force", action="store_true", help="replace an existing experiment file")
    args = p.parse_args(argv)
    try:
        if args.command == "table":
            text, files = write_table(args.sweep_dir, load_study(args.sweep_dir, args.study))
            print(text)
            print(f"wrote {', '.join(str(f) for f in files)}", file=sys.stderr)
        else:
            out = export_experiment(args.sweep_dir, args.name, args.config_dir, args.study, args.trial, args.force)
            print(f"wrote {out}\nrun it: python train.py experiment={out.stem}")
    except SearchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
