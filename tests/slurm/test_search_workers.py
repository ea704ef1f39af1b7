"""Two SLURM jobs as two workers of one Optuna study (``pytest -m slurm``): the search's own parallelism.

Each job runs the same ``train.py ... hparams_search=optuna`` command (the basic launcher inside the job): it asks the
journal study for a trial, trains it, tells the result, and asks again until the study holds ``n_trials`` trials.
No process outside SLURM stays alive for the search. The command is the one docs/hparams_search.md gives.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest
from omegaconf import OmegaConf
from tests_helpers import TINY_DATA, TINY_FOLDS, require_module

from cfnsr.runs.record import read_record

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slurm


def _wait(job_ids: list[str], timeout: float = 900) -> dict[str, str]:
    """Job id -> final state, once SLURM has ended every job."""
    end = time.time() + timeout
    while True:
        states = {}
        for jid in job_ids:
            out = subprocess.run(["scontrol", "show", "job", "-o", jid], capture_output=True, text=True).stdout
            m = re.search(r"JobState=(\S+)", out)
            states[jid] = m.group(1) if m else "GONE"
        if all(s not in ("PENDING", "RUNNING", "COMPLETING", "CONFIGURING") for s in states.values()):
            return states
        if time.time() > end:
            subprocess.run(["scancel", *job_ids])
            pytest.fail(f"SLURM jobs still running after {timeout} s: {states}")
        time.sleep(2)


def test_two_slurm_jobs_are_two_workers_of_one_study(slurm_cluster, tiny_data_dir: Path, tmp_path: Path):
    optuna = require_module("optuna", "optuna")
    from cfnsr.runs.study_storage import open_storage

    conf = tmp_path / "conf"
    (conf / "experiment").mkdir(parents=True)
    settings = OmegaConf.from_dotlist([TINY_FOLDS, *TINY_DATA, "trainer.max_epochs=1",
                                       "trainer.enable_progress_bar=false", "preprocess.workers=0"])
    (conf / "experiment" / "tiny_search.yaml").write_text("# @package _global_\n" + OmegaConf.to_yaml(settings))
    sweep = tmp_path / "search"
    train = [sys.executable, "train.py", "--config-dir", str(conf), "experiment=tiny_search", "hparams_search=optuna",
             "fusion=cfnsr", "fold=1", f"hydra.sweep.dir={sweep}", "hydra.sweeper.n_trials=3"]
    env = {**os.environ, **slurm_cluster, "CFNSR_DATA_DIR": str(tiny_data_dir), "PYTHONPATH": str(ROOT),
           "OMP_NUM_THREADS": "1"}
    job_ids = []
    for i in range(2):
        done = subprocess.run(["sbatch", "--parsable", "--job-name", f"cfnsr-search-worker{i}", "--cpus-per-task=1",
                               "--mem=2G", "--time=20", f"--chdir={ROOT}", f"--output={tmp_path}/worker{i}.out",
                               "--wrap", shlex.join(train)], capture_output=True, text=True, env=env, check=True)
        job_ids.append(done.stdout.strip().split(";")[0])
    states = _wait(job_ids)
    outs = [(tmp_path / f"worker{i}.out").read_text() for i in range(2)]
    assert set(states.values()) == {"COMPLETED"}, f"{states}\n" + "\n".join(o[-3000:] for o in outs)

    study = optuna.load_study(study_name="demo-cfnsr-paper-fold1",
                              storage=open_storage(str(sweep / "optuna.journal")))
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 3  # exactly n_trials, over both jobs
    ran = [int(re.search(r"this worker ran (\d+) trials", o).group(1)) for o in outs]
    assert sum(ran) == 3 and min(ran) >= 1, ran
    # each trial's record names the SLURM job that trained it; both jobs trained
    jobs = {}
    for rec_path in sweep.glob("*/metrics.json"):
        rec = read_record(rec_path.parent)
        assert rec["status"] == "finished"
        jobs[rec["search"]["trial"]] = rec["slurm_job_id"]
    assert sorted(jobs) == [0, 1, 2] and set(jobs.values()) == set(job_ids)
    for t in study.trials:
        assert read_record(next(sweep.glob(f"{t.number}_*")))["objective"]["value"] == t.value
