"""train.py through hydra-submitit-launcher on a real one-node SLURM cluster (``pytest -m slurm``).

A 2x2 sweep (one SLURM job per point), one job of 2 SLURM tasks (ddp over gloo, ranks from SLURM), and a job
requeued by SLURM that resumes its run. The commands are the README's ("Multi-GPU and clusters", SLURM).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cfnsr.report import build_report, collect_runs
from cfnsr.runs.record import read_record

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slurm

# Small jobs for a small node: 1 CPU and 2 GB each, so two run at once on a 2-core machine.
SMALL_JOBS = ["hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=2", "hydra.launcher.timeout_min=20"]


def _train_multirun(conf_dir: Path, sweep: Path, *overrides: str) -> list[str]:
    return [sys.executable, "train.py", "--config-dir", str(conf_dir), "-m", "hydra/launcher=slurm",
            "experiment=tiny_e2e", *overrides, f"hydra.sweep.dir={sweep}", *SMALL_JOBS]


def _env(data_dir: Path, cluster: dict[str, str]) -> dict[str, str]:
    return {**os.environ, **cluster, "CFNSR_DATA_DIR": str(data_dir), "PYTHONPATH": str(ROOT)}


def _job_dirs(sweep: Path) -> list[Path]:
    return sorted(p for p in sweep.iterdir() if p.is_dir() and not p.name.startswith("."))


def _scontrol_job(job_id: str) -> dict[str, str]:
    """``scontrol show job`` as a dict (the job is known to slurmctld for MinJobAge after it ends)."""
    out = subprocess.run(["scontrol", "show", "job", "-o", job_id], capture_output=True, text=True, check=True)
    # The id of an array's job lists every task of the array: keep the line of this job.
    jobs = [dict(kv.split("=", 1) for kv in line.split() if "=" in kv) for line in out.stdout.splitlines()]
    (job,) = [j for j in jobs if j.get("JobId") == job_id]
    return job


def _ended_job(job_id: str, timeout: float = 120) -> dict[str, str]:
    """The job's state once SLURM has closed it: submitit returns as soon as the result file is written, while the
    job may still be RUNNING or COMPLETING for a moment."""
    end = time.time() + timeout
    while True:
        job = _scontrol_job(job_id)
        if job["JobState"] not in ("PENDING", "RUNNING", "COMPLETING") or time.time() > end:
            return job
        time.sleep(0.5)


def test_sweep_runs_one_slurm_job_per_point_and_the_report_builds(slurm_cluster, tiny_data_dir, tiny_conf_dir,
                                                                   tmp_path):
    sweep = tmp_path / "sweep"
    cmd = _train_multirun(tiny_conf_dir, sweep, "fold=1,2", "fusion=cfnsr,msaf")
    started = time.time()
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1200,
                          env=_env(tiny_data_dir, slurm_cluster))
    wall = time.time() - started
    assert done.returncode == 0, done.stderr[-3000:]
    # Without an accounting database every poll fails; the warning is shown once, not per poll.
    assert "Call #2 - Bypassing sacct error" not in done.stdout + done.stderr

    dirs = _job_dirs(sweep)
    assert [d.name for d in dirs] == ["0_fold-1+fusion-cfnsr", "1_fold-1+fusion-msaf", "2_fold-2+fusion-cfnsr",
                                      "3_fold-2+fusion-msaf"]
    job_ids = []
    for d in dirs:
        record = read_record(d)
        assert record["status"] == "finished", (d, record.get("error"))
        fold, fusion = re.fullmatch(r"\d+_fold-(\d)\+fusion-(\w+)", d.name).groups()
        assert (record["fold"], record["fusion"]) == (int(fold), fusion)
        job = _ended_job(record["slurm_job_id"])  # a real SLURM job of this sweep's job array
        assert job["JobState"] == "COMPLETED" and job["ArrayJobId"]
        assert Path(job["StdOut"]).parent.parent == sweep / ".submitit"
        job_ids.append(f"{record['slurm_job_id']} ({job['ArrayJobId']}_{job['ArrayTaskId']})")
    assert len(set(job_ids)) == 4
    print(f"\n2x2 SLURM sweep: wall time {wall:.0f} s, SLURM job ids {', '.join(job_ids)}")
    (sweep / "slurm_test_timing.json").write_text(json.dumps({"wall_s": round(wall, 1), "jobs": job_ids}))

    runs, skipped = collect_runs([sweep])
    assert not skipped and len(runs) == 4
    assert {row.fusion for row in build_report(runs).groups[0].rows} == {"cfnsr", "msaf"}
    out = subprocess.run([sys.executable, "-m", "cfnsr.report", str(sweep)], cwd=ROOT, capture_output=True,
                         text=True, timeout=300, env=_env(tiny_data_dir, slurm_cluster))
    assert out.returncode == 0, out.stderr[-3000:]
    assert (sweep / "report.md").is_file() and (sweep / "report.csv").is_file()


def test_two_slurm_tasks_train_with_ddp_and_count_each_test_clip_once(slurm_cluster, tiny_data_dir, tiny_conf_dir,
                                                                      tmp_path):
    # One job, 2 tasks (tasks_per_node follows trainer.devices), no GPU requested for a CPU trainer. Fold 3 tests
    # actors 5 and 6: 120 clips, which 2 ranks x eval batch 32 would pad to 128 with a plain DistributedSampler.
    sweep = tmp_path / "ddp"
    cmd = _train_multirun(tiny_conf_dir, sweep, "fold=3", "fusion=concat_fc", "trainer=ddp",
                          "trainer.accelerator=cpu", "trainer.devices=2", "trainer.sync_batchnorm=false")
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1200,
                          env=_env(tiny_data_dir, slurm_cluster))
    assert done.returncode == 0, done.stderr[-3000:]
    (job_dir,) = _job_dirs(sweep)
    record = read_record(job_dir)
    assert record["status"] == "finished", record.get("error")
    job = _ended_job(record["slurm_job_id"])
    assert job["NumTasks"] == "2" and "gres/gpu" not in job.get("TRES", "")
    assert record["world_size"] == 2

    # Each SLURM task logged its own rank of a world of 2 (Lightning took the ranks from SLURM; it logs to stderr).
    logs = {p.name: p.read_text() for p in (sweep / ".submitit").rglob("*_log.*")}
    members = sorted(m for text in logs.values() for m in re.findall(r"MEMBER: (\d/\d)", text))
    assert members == ["1/2", "2/2"], logs.keys()
    for tag in ("test", "test_last"):
        assert record[tag]["n"] == 120
        assert [sum(row) for row in record[tag]["confusion"]] == [8] + [16] * 7  # per actor: 4 neutral, 8 others


def _wait_for(what: str, check, timeout: float, procs: list[subprocess.Popen]):
    end = time.time() + timeout
    while time.time() < end:
        value = check()
        if value:
            return value
        for p in procs:
            if p.poll() is not None:
                pytest.fail(f"{what}: the sweep process ended first (rc {p.returncode}):\n"
                            f"{p.stderr.read()[-3000:] if p.stderr else ''}")
        time.sleep(0.2)
    pytest.fail(f"{what}: not within {timeout:.0f} s")


def test_requeued_job_resumes_its_run_and_ends_as_an_uninterrupted_one(slurm_cluster, tiny_data_dir, tiny_conf_dir,
                                                                       tmp_path):
    env = _env(tiny_data_dir, slurm_cluster)
    point = ["fold=1", "fusion=concat_fc", "trainer.max_epochs=4", "seed=7"]
    # The same job twice: one is requeued after its first epoch, the other runs through (the reference).
    procs = [subprocess.Popen(_train_multirun(tiny_conf_dir, tmp_path / name, *point), cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for name in ("requeued", "reference")]
    try:
        sweep = tmp_path / "requeued"
        last = _wait_for("first last.ckpt", lambda: next(sweep.glob("*/checkpoints/last.ckpt"), None), 900,
                         procs)
        job_dir = last.parent.parent
        first = read_record(job_dir)
        assert first["status"] == "running"
        job_id = first["slurm_job_id"]
        subprocess.run(["scontrol", "requeue", job_id], check=True)
        # SLURM holds a requeued batch job for about two minutes (BeginTime); release it at once.
        _wait_for("job pending again", lambda: _scontrol_job(job_id)["JobState"] == "PENDING", 120, [])
        subprocess.run(["scontrol", "update", f"jobid={job_id}", "StartTime=now"], check=True)
        for p in procs:
            _, err = p.communicate(timeout=1200)
            assert p.returncode == 0, err[-3000:]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()

    job = _ended_job(job_id)
    assert job["Restarts"] == "1" and job["JobState"] == "COMPLETED"
    record = read_record(job_dir)
    assert _job_dirs(sweep) == [job_dir]  # continued in its own folder
    assert record["status"] == "finished", record.get("error")
    assert record["run_id"] == first["run_id"] and record["slurm_job_id"] == job_id
    assert record["resumed_from"] == str(last.resolve())
    (ref_dir,) = _job_dirs(tmp_path / "reference")
    reference = read_record(ref_dir)
    assert reference["status"] == "finished" and "resumed_from" not in reference
    assert record["epochs"] == reference["epochs"] == 4
    assert record["best_epoch"] == reference["best_epoch"]
    for tag in ("test", "test_last"):
        for key in ("war", "uar", "f1", "confusion", "n", "epoch"):
            assert record[tag][key] == reference[tag][key], (tag, key)
