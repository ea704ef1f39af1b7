"""The end-of-multirun summary: one line per job from the records on disk, then the report command."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf
from tests_helpers import TINY_DATA, TINY_FOLDS

from cfnsr.runs.multirun_summary import FILENAME, MultirunSummary, format_summary
from cfnsr.runs.record import read_record, write_record

ROOT = Path(__file__).resolve().parents[2]


def _job(sweep: Path, name: str, **record) -> None:
    (sweep / name / ".hydra").mkdir(parents=True)
    if record:
        write_record(sweep / name, record)


def test_one_line_per_job_in_job_order_with_one_based_epochs(tmp_path: Path):
    sweep = tmp_path / "sweep"
    result = {"war": 0.5083, "uar": 0.5, "f1": 0.4, "n": 120}
    _job(sweep, "10_fold-2+fusion-msaf", status="finished", best_epoch=0, epochs=3, test={**result, "war": 0.25},
         objective=None)
    _job(sweep, "0_fold-1+fusion-cfnsr", status="finished", best_epoch=1, epochs=2, test=result,
         objective={"name": "val/war", "value": 0.4583, "epoch": 1})
    _job(sweep, "1_fold-1+fusion-mcbp", status="failed", error="RuntimeError: CUDA out of memory. " + "x" * 200)
    _job(sweep, "2_fold-1+fusion-mmtm")  # died before writing its record
    _job(sweep, "3_fold-1+fusion-late", status="debug", debug=["trainer.fast_dev_run=True"], epochs=1)
    (sweep / "not_a_job").mkdir()

    text = format_summary(sweep)
    lines = text.splitlines()
    assert lines[0] == f"multirun {sweep}: 5 job(s), 2 finished"
    rows = [line for line in lines if re.match(r"\d+_", line)]
    assert [r.split()[0] for r in rows] == ["0_fold-1+fusion-cfnsr", "1_fold-1+fusion-mcbp", "2_fold-1+fusion-mmtm",
                                            "3_fold-1+fusion-late", "10_fold-2+fusion-msaf"]
    assert rows[0].split()[1:] == ["finished", "2/2", "45.83", "50.83"]  # best-e001 of 2 epochs: epoch 2 of 2
    assert rows[1].split()[1] == "failed" and "CUDA out of memory" in rows[1] and len(rows[1]) < 150
    assert "missing" in rows[2] and "no metrics.json" in rows[2]
    assert "debug" in rows[3] and "fast_dev_run" in rows[3]
    assert rows[4].split()[1:] == ["finished", "1/3", "–", "25.00"]  # paper protocol: no validation score
    assert lines[-1] == f"report: python -m cfnsr.report {sweep}"
    assert len(lines) <= 12


def test_callback_prints_and_writes_the_summary(tmp_path: Path, capsys):
    sweep = tmp_path / "sweep"
    _job(sweep, "0_fold-1", status="finished", best_epoch=0, epochs=1, test={"war": 0.1})
    MultirunSummary().on_multirun_end(OmegaConf.create({"hydra": {"sweep": {"dir": str(sweep)}}}))
    saved = (sweep / FILENAME).read_text()
    assert saved.strip() == format_summary(sweep) and saved.strip() in capsys.readouterr().out


def test_hydra_config_registers_the_callback():
    hydra_cfg = OmegaConf.load(ROOT / "conf" / "hydra" / "default.yaml")
    targets = [c["_target_"] for c in hydra_cfg.callbacks.values()]
    assert "cfnsr.runs.multirun_summary.MultirunSummary" in targets


@pytest.mark.slow
def test_multirun_ends_with_the_summary_and_evaluate_names_its_outputs(tiny_data_dir: Path, tmp_path: Path):
    exp_dir = tmp_path / "conf" / "experiment"
    exp_dir.mkdir(parents=True)
    settings = OmegaConf.from_dotlist([TINY_FOLDS, *TINY_DATA, "trainer.max_epochs=2", "preprocess.workers=0",
                                       "measure_gflops=false"])
    (exp_dir / "tiny_e2e.yaml").write_text("# @package _global_\n" + OmegaConf.to_yaml(settings))
    sweep = tmp_path / "sweep"
    cmd = [sys.executable, "train.py", "--config-dir", str(tmp_path / "conf"), "-m", "experiment=tiny_e2e",
           "fusion=averaging,concat_fc", f"hydra.sweep.dir={sweep}"]
    env = {**os.environ, "CFNSR_DATA_DIR": str(tiny_data_dir)}
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = (sweep / FILENAME).read_text()
    assert summary.strip() in done.stdout
    assert f"{sweep}: 2 job(s), 2 finished" in summary
    assert summary.strip().endswith(f"report: python -m cfnsr.report {sweep}")
    for job in ("0_fusion-averaging", "1_fusion-concat_fc"):
        record = read_record(sweep / job)
        (row,) = [line for line in summary.splitlines() if line.startswith(job)]
        ckpt = Path(record["best_ckpt"]).name  # best-eNNN.ckpt, 0-based NNN
        epoch = int(re.fullmatch(r"best-e(\d{3})\.ckpt", ckpt).group(1)) + 1
        assert row.split()[1:] == ["finished", f"{epoch}/2", f"{100 * record['objective']['value']:.2f}",
                                   f"{100 * record['test']['war']:.2f}"]
        assert f"selected epoch: {epoch} of 2" in (sweep / job / "train.log").read_text()

    # evaluate.py on the first job's selected checkpoint: the same 1-based epoch, and where it wrote
    record = read_record(sweep / "0_fusion-averaging")
    out = tmp_path / "evaluation"
    ev = subprocess.run([sys.executable, "evaluate.py", f"ckpt_path={record['best_ckpt']}", f"hydra.run.dir={out}",
                         "trainer.enable_progress_bar=false"], cwd=ROOT, capture_output=True, text=True, timeout=300,
                        env=env)  # the corpus is found where the command says (never where the checkpoint says)
    assert ev.returncode == 0, ev.stderr[-3000:]
    epoch = record["best_epoch"] + 1
    assert f"selected epoch: {epoch} of 2" in ev.stdout
    assert f"test:        {out / 'test.json'}" in ev.stdout and (out / "test.json").is_file()
    assert "Tip" not in ev.stdout + ev.stderr
    assert f"selected epoch: {epoch} of 2" in (out / "evaluate.log").read_text()
