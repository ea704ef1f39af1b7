"""Demo-time benchmark: ``python train.py`` from a fresh clone (no corpus, no cache), stage by stage.

Runs the demo command in a subprocess with ``paths.data_dir`` and ``paths.log_dir`` in an empty temporary folder
(so the synthetic corpus is generated and preprocessed, as on a fresh clone), then reads the stage boundaries from
the run's ``train.log`` timestamps:

* ``start-up``: process start -> the first logged line (imports, Hydra composition);
* ``generation``: the "Generating the synthetic ..." line -> preprocessing start (the preprocessing line states its
  own seconds);
* ``preprocessing``: as the preprocessing line reports it;
* ``training``: preprocessing done -> Lightning's "`Trainer.fit` stopped";
* ``test + summary``: -> process exit.

It prints wall seconds per stage, the total, and the CPU seconds (user + system, ``RUSAGE_CHILDREN``) of the
train.py process and the children it reaped: the generation and preprocessing workers, forked by a fork server that
is not reaped the same way, are NOT counted (their CPU time per clip is in the cache's preprocess_report.json). Not a timed test: the
README and docs/diagnostics.md state the figure and the machine it was measured on.

Usage: ``python bench/demo_time.py [--keep DIR] [-- extra train.py overrides ...]``
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_STAMP = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\]")
_PREPROCESS = re.compile(r"preprocess: .*, ([0-9.]+) s$")


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--keep", type=Path, default=None, help="work in this (empty or new) folder and keep it")
    ap.add_argument("overrides", nargs="*", help="extra train.py overrides (after --)")
    return ap


def _stamp(line: str) -> float | None:
    m = _STAMP.match(line)
    return datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp() if m else None


def stages(log_lines: list[str], started: float, ended: float) -> dict[str, float]:
    """Stage -> wall seconds, from the timestamped lines of a demo run's train.log (see the module docstring).

    Stages whose boundary lines are missing (e.g. a corpus that already existed: no "Generating" line) are left out.
    """
    first = gen = prep_end = fit_end = None
    prep_s = None
    for line in log_lines:
        t = _stamp(line)
        if t is None:
            continue
        first = t if first is None else first
        if gen is None and "Generating the synthetic" in line:
            gen = t
        m = _PREPROCESS.search(line.rstrip())
        if m and prep_end is None:
            prep_end, prep_s = t, float(m.group(1))
        if fit_end is None and "Trainer.fit` stopped" in line:
            fit_end = t
    out: dict[str, float] = {}
    if first is not None:
        out["start-up"] = first - started
    if first is not None and gen is not None:
        out["config and folders"] = gen - first  # from the first log line to the corpus generation
    if gen is not None and prep_end is not None and prep_s is not None:
        out["generation"] = max(0.0, prep_end - prep_s - gen)
    if prep_s is not None:
        out["preprocessing"] = prep_s
    if prep_end is not None and fit_end is not None:
        out["training"] = fit_end - prep_end
    if fit_end is not None:
        out["test + summary"] = ended - fit_end
    out["total"] = ended - started
    return out


def run(work: Path, overrides: list[str]) -> dict[str, float]:
    env = {**os.environ, "WANDB_MODE": "offline", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, str(ROOT / "train.py"), f"paths.data_dir={work / 'data'}", f"paths.log_dir={work / 'out'}",
           "trainer.enable_progress_bar=false", *overrides]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.time()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    ended = time.time()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"demo failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    logs = sorted((work / "out").glob("*/runs/*/train.log"))
    if not logs:
        raise SystemExit(f"no train.log under {work / 'out'}")
    out = stages(logs[-1].read_text(encoding="utf-8").splitlines(), started, ended)
    out["cpu (main, no workers)"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return out


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
        if any(args.keep.iterdir()):
            raise SystemExit(f"--keep {args.keep}: not empty (a fresh clone has no corpus and no cache)")
        work = args.keep
    else:
        work = Path(tempfile.mkdtemp(prefix="cfnsr-demo-"))
    try:
        times = run(work, args.overrides)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    print(f"demo: python train.py {' '.join(args.overrides)}".rstrip() + f"  ({os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f} at the end)")
    for stage, seconds in times.items():
        print(f"  {stage:22s} {seconds:7.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
