"""A real Optuna search through train.py on the tiny corpus: 3 trials, resumed to 4, exported, trained, reported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf, open_dict
from tests_helpers import TINY_DATA, TINY_FOLDS, compose_train, require_module

from cfnsr.builders.config_checks import ConfigError, check_tuned_fold
from cfnsr.data.folds import make_split
from cfnsr.report import SearchTrial, build_report, collect_runs, format_markdown
from cfnsr.runs.record import read_record

optuna = require_module("optuna", "optuna")
require_module("hydra_plugins.hydra_optuna_sweeper", "optuna")

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow
TINY_TEST_ACTORS = [[1, 2], [3, 4], [5, 6]]


def _search_command(conf: Path, sweep: Path, n_trials: int) -> list[str]:
    return [sys.executable, "train.py", "--config-dir", str(conf), "experiment=tiny_search", "hparams_search=optuna",
            "fusion=cfnsr", "fold=1", f"hydra.sweep.dir={sweep}", f"hydra.sweeper.n_trials={n_trials}"]


def _run(cmd: list[str], data_dir: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "CFNSR_DATA_DIR": str(data_dir), "PYTHONPATH": str(ROOT)}
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done


def _trial_folders(sweep: Path) -> dict[int, Path]:
    found = {}
    for rec in sweep.glob("*/metrics.json"):
        found[int(json.loads(rec.read_text())["search"]["trial"])] = rec.parent
    return found


def test_search_resumes_exports_and_stays_out_of_the_comparison(tiny_data_dir: Path, tmp_path: Path):
    conf = tmp_path / "conf"
    (conf / "experiment").mkdir(parents=True)
    settings = OmegaConf.from_dotlist([TINY_FOLDS, *TINY_DATA, "trainer.max_epochs=1",
                                       "trainer.enable_progress_bar=false", "preprocess.workers=0"])
    (conf / "experiment" / "tiny_search.yaml").write_text("# @package _global_\n" + OmegaConf.to_yaml(settings))
    sweep = tmp_path / "search"

    started = time.time()
    first = _run(_search_command(conf, sweep, 3), tiny_data_dir)
    first_seconds = time.time() - started
    study = optuna.load_study(study_name="demo-cfnsr-paper-fold1", storage=f"sqlite:///{sweep / 'optuna.db'}")
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 3
    folders = _trial_folders(sweep)
    assert sorted(folders) == [0, 1, 2]
    assert "| trial | state | objective |" in first.stdout and (sweep / "trials.csv").is_file()

    split = make_split(TINY_TEST_ACTORS, 1, "search")
    clean = make_split(TINY_TEST_ACTORS, 1, "clean")
    for t in study.trials:
        folder = folders[t.number]
        assert folder.name.startswith(f"{t.number}_")
        rec = read_record(folder)
        # the value the study stored is the value the job returned: its recorded selected-epoch validation WAR
        assert rec["status"] == "finished" and rec["objective"]["name"] == "val/war"
        assert t.value == rec["objective"]["value"]
        assert rec["search"] == {"study": study.study_name, "trial": t.number, "outer_fold": 1, "objective": "val/war"}
        # nested: validation from fold 1's own training actors; the test fold is neither used nor evaluated
        assert rec["test_actors"] == [1, 2] and rec.get("test") is None
        assert rec["val_actors"] == list(split.val_actors) == [5, 6]
        assert set(rec["val_actors"]) <= set(clean.train_actors)
        assert not set(rec["val_actors"]) & (set(clean.test_actors) | set(clean.val_actors))
        cfg = OmegaConf.load(folder / "config.yaml")
        assert cfg.protocol.name == "search" and not cfg.test_after_fit
        assert not set(split.train_actors) & {1, 2}
        # the job trained with the settings the study proposed
        for key, value in t.params.items():
            assert OmegaConf.select(cfg, key) == value, key
        assert {"optimizer.lr", "optimizer.weight_decay", "data.batch_size", "fusion.model.num_heads",
                "fusion.model.num_layers"} <= set(t.params)

    before = {n: (f.name, (f / "metrics.json").read_bytes()) for n, f in folders.items()}
    started = time.time()
    second = _run(_search_command(conf, sweep, 4), tiny_data_dir)
    resume_seconds = time.time() - started
    study = optuna.load_study(study_name=study.study_name, storage=f"sqlite:///{sweep / 'optuna.db'}")
    assert [t.number for t in study.trials] == [0, 1, 2, 3] and all(t.state.name == "COMPLETE" for t in study.trials)
    folders = _trial_folders(sweep)
    assert sorted(folders) == [0, 1, 2, 3] and folders[3].name.startswith("3_")
    assert {n: (f.name, (f / "metrics.json").read_bytes()) for n, f in folders.items() if n < 3} == before
    assert read_record(folders[3])["objective"]["value"] == study.trials[3].value
    assert "Resuming study" in second.stdout + second.stderr

    # export the best trial as an experiment and train it: fold 1, clean protocol, tested, marked as tuned
    done = _run([sys.executable, "-m", "cfnsr.search", "export", str(sweep), "--name", "tuned_tiny",
                 "--config-dir", str(conf)], tiny_data_dir)
    assert "experiment=tuned_tiny" in done.stdout
    best = max(study.trials, key=lambda t: t.value)
    exported = yaml.safe_load((conf / "experiment" / "tuned_tiny.yaml").read_text())
    assert exported["fold"] == 1 and exported["hparams"]["trial"] == best.number
    assert exported["hparams"]["test_actors"] == [1, 2] and exported["hparams"]["search_val_actors"] == [5, 6]
    tuned_dir = tmp_path / "tuned"
    _run([sys.executable, "train.py", "--config-dir", str(conf), "experiment=tuned_tiny",
          f"hydra.run.dir={tuned_dir}"], tiny_data_dir)
    tuned = read_record(tuned_dir)
    assert tuned["status"] == "finished" and tuned["protocol"] == "clean" and tuned["test"]["war"] is not None
    assert tuned["hparams"]["trial"] == best.number and "search" not in tuned
    tuned_cfg = OmegaConf.load(tuned_dir / "config.yaml")
    for key, value in best.params.items():
        assert OmegaConf.select(tuned_cfg, key) == value, key

    # the exported settings may only be tested on fold 1: fold 3 tests the search's validation actors
    cfg = compose_train(["fold=3"], data_dir=tiny_data_dir, output_dir=tmp_path / "unused")
    with open_dict(cfg):
        cfg.hparams = exported["hparams"]
    with pytest.raises(ConfigError, match="tuned on the test data"):
        check_tuned_fold(cfg)

    # the report: the tuned run is the table; the 4 trials are listed apart
    runs, skipped = collect_runs([sweep, tuned_dir])
    report = build_report(runs, skipped=skipped)
    assert [r.run_dir for r in runs] == [tuned_dir.resolve()]
    (table,) = report.groups
    assert [row.n_runs for row in table.rows] == [1]
    assert any("hyperparameters chosen by a nested search" in n for n in table.notes)
    trials = [s for s in skipped if isinstance(s, SearchTrial)]
    assert sorted(t.trial for t in trials) == [0, 1, 2, 3] and len(skipped) == 4
    text = format_markdown(report)
    assert "Hyperparameter-search trials (4, not in the comparison)" in text
    print(f"\nsearch: 3 trials in {first_seconds:.0f} s, resume to 4 in {resume_seconds:.0f} s")
    print((sweep / "trials.md").read_text())
