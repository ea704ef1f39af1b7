"""``python -m cfnsr.data.synthetic <root> [--actors N] [--workers W] ...``: generate a corpus from the shell."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Iterable
from pathlib import Path

from cfnsr.data.synthetic.config import CONFIG_FILE, SyntheticConfig, SyntheticConfigMismatch
from cfnsr.data.synthetic.corpus import generate_corpus


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m cfnsr.data.synthetic",
                                 description="Generate a synthetic RAVDESS-format corpus (mp4 + landmark CSVs).")
    ap.add_argument("root", type=Path)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--no-progress", action="store_true")
    for f in dataclasses.fields(SyntheticConfig):
        flag = "--" + f.name.replace("_", "-")
        if f.name == "emotions":
            ap.add_argument(flag, type=int, nargs="+", default=None, help="emotion codes 1..8 (default: all)")
        elif f.name == "clips_per_actor":
            ap.add_argument(flag, type=int, default=None)
        else:
            ap.add_argument(flag, type=type(f.default), default=f.default, help=f"(default: {f.default})")
    return ap


def main(argv: Iterable[str] | None = None) -> int:
    args = _parser().parse_args(None if argv is None else list(argv))
    config = {f.name: getattr(args, f.name) for f in dataclasses.fields(SyntheticConfig)}
    import time
    t0 = time.perf_counter()
    try:
        root = generate_corpus(args.root, workers=args.workers, progress=not args.no_progress, **config)
    except (SyntheticConfigMismatch, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    n = json.loads((root / CONFIG_FILE).read_text())["clips"]
    print(f"{n} clips in {root} ({time.perf_counter() - t0:.1f} s)")
    return 0
