"""Seconds until ``train.py --help`` / ``--cfg job`` answer, against the old order (torch and Lightning imported
before Hydra parses), side by side in one process: ``python bench/cli_startup.py [--repeats 3]``."""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# The old entry point imported the training task at module level; this reproduces that order of imports.
OLD_ORDER = "import sys, runpy; import cfnsr.tasks.train; sys.argv = ['train.py', *sys.argv[1:]]; " \
            "runpy.run_path('train.py', run_name='__main__')"


def _seconds(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=REPO, check=True, capture_output=True)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    for flags in (["--help"], ["--cfg", "job"], ["--info"]):
        new, old = [], []
        for _ in range(args.repeats):  # interleaved, so a busy moment hits both alike
            new.append(_seconds([sys.executable, "train.py", *flags]))
            old.append(_seconds([sys.executable, "-c", OLD_ORDER, *flags]))
        n, o = statistics.median(new), statistics.median(old)
        print(f"train.py {' '.join(flags):10s} now {n:5.2f} s   heavy imports first {o:5.2f} s   ratio {o / n:4.1f}x")


if __name__ == "__main__":
    main()
