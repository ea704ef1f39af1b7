"""A real Optuna search through train.py on the tiny corpus: 3 trials, resumed to 4, a pruned 5th, exported, trained,
reported; two worker processes on one study; the RDB storage option."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from omegaconf import OmegaConf, open_dict
from tests_helpers import TINY_DATA, TINY_FOLDS, compose_train, require_module

from cfnsr.builders.config_checks import ConfigError, check_tuned_fold
from cfnsr.data.folds import make_split
from cfnsr.report import SearchTrial, build_report, collect_runs, format_markdown
from cfnsr.runs.record import read_record

optuna = require_module("optuna", "optuna")

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow
TINY_TEST_ACTORS = [[1, 2], [3, 4], [5, 6]]


# Prunes every trial after its first epoch (no trial reaches val/war 1.1): a pruner that decides deterministically.
PRUNE_ALL = "search.pruner={_target_:optuna.pruners.ThresholdPruner,lower:1.1}"


def _search_command(conf: Path, sweep: Path, n_trials: int, *extra: str) -> list[str]:
    return [sys.executable, "train.py", "--config-dir", str(conf), "experiment=tiny_search", "hparams_search=optuna",
            "fusion=cfnsr", "fold=1", f"hydra.sweep.dir={sweep}", f"hydra.sweeper.n_trials={n_trials}", *extra]


def _env(data_dir: Path) -> dict[str, str]:
    return {**os.environ, "CFNSR_DATA_DIR": str(data_dir), "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def _run(cmd: list[str], data_dir: Path) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600, env=_env(data_dir))
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done


def _tiny_conf(tmp_path: Path, epochs: int = 1) -> Path:
    conf = tmp_path / "conf"
    (conf / "experiment").mkdir(parents=True)
    settings = OmegaConf.from_dotlist([TINY_FOLDS, *TINY_DATA, f"trainer.max_epochs={epochs}",
                                       "trainer.enable_progress_bar=false", "preprocess.workers=0"])
    (conf / "experiment" / "tiny_search.yaml").write_text("# @package _global_\n" + OmegaConf.to_yaml(settings))
    return conf


def _journal_study(sweep: Path, name: str = "demo-cfnsr-paper-fold1"):
    from cfnsr.runs.study_storage import open_storage

    return optuna.load_study(study_name=name, storage=open_storage(str(sweep / "optuna.journal")))


def _trial_folders(sweep: Path) -> dict[int, Path]:
    found = {}
    for rec in sweep.glob("*/metrics.json"):
        found[int(json.loads(rec.read_text())["search"]["trial"])] = rec.parent
    return found


def test_search_resumes_exports_and_stays_out_of_the_comparison(tiny_data_dir: Path, tmp_path: Path):
    conf = _tiny_conf(tmp_path, epochs=2)
    sweep = tmp_path / "search"

    started = time.time()
    first = _run(_search_command(conf, sweep, 3), tiny_data_dir)
    first_seconds = time.time() - started
    study = _journal_study(sweep)  # Optuna's journal file in the sweep folder; no SQLite file
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 3 and not list(sweep.glob("*.db"))
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
        # each epoch's validation WAR was reported to the study by the trial job (what a pruner decides on)
        curve = pd.read_csv(next(folder.glob("csv/**/metrics.csv")))["val/war"].dropna().tolist()
        assert t.intermediate_values == dict(enumerate(curve)) and len(curve) == 2

    before = {n: (f.name, (f / "metrics.json").read_bytes()) for n, f in folders.items()}
    started = time.time()
    second = _run(_search_command(conf, sweep, 4), tiny_data_dir)
    resume_seconds = time.time() - started
    study = _journal_study(sweep)
    assert [t.number for t in study.trials] == [0, 1, 2, 3] and all(t.state.name == "COMPLETE" for t in study.trials)
    folders = _trial_folders(sweep)
    assert sorted(folders) == [0, 1, 2, 3] and folders[3].name.startswith("3_")
    assert {n: (f.name, (f / "metrics.json").read_bytes()) for n, f in folders.items() if n < 3} == before
    assert read_record(folders[3])["objective"]["value"] == study.trials[3].value
    assert "Resuming study" in second.stdout + second.stderr

    # a pruner that prunes every trial after epoch 1: trial 4 is recorded "pruned" and told PRUNED
    third = _run(_search_command(conf, sweep, 5, PRUNE_ALL), tiny_data_dir)
    study = _journal_study(sweep)
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 4 + ["PRUNED"]
    folders = _trial_folders(sweep)
    pruned = read_record(folders[4])
    assert pruned["status"] == "pruned" and "pruned after epoch 1" in pruned["error"]
    assert list(study.trials[4].intermediate_values) == [0] and not (folders[4] / "error.txt").exists()
    assert "| 4 | PRUNED (epoch 1) |" in third.stdout
    # the same command once more: 5 counted trials (pruned ones count), nothing to run
    fourth = _run(_search_command(conf, sweep, 5, PRUNE_ALL), tiny_data_dir)
    assert len(_journal_study(sweep).trials) == 5 and "this worker ran 0 trials" in fourth.stdout + fourth.stderr

    # export the best trial as an experiment and train it: fold 1, clean protocol, tested, marked as tuned
    done = _run([sys.executable, "-m", "cfnsr.search", "export", str(sweep), "--name", "tuned_tiny",
                 "--config-dir", str(conf)], tiny_data_dir)
    assert "experiment=tuned_tiny" in done.stdout
    best = max(study.trials[:4], key=lambda t: (t.value, -t.number))  # a pruned trial is never chosen
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

    # export refuses the pruned trial by name
    refused = subprocess.run([sys.executable, "-m", "cfnsr.search", "export", str(sweep), "--trial", "4",
                              "--config-dir", str(conf)], cwd=ROOT, capture_output=True, text=True,
                             env=_env(tiny_data_dir))
    assert refused.returncode == 2 and "no completed trial 4 (PRUNED" in refused.stderr

    # the report: the tuned run is the table; the 5 trials (one pruned) are listed apart
    runs, skipped = collect_runs([sweep, tuned_dir])
    report = build_report(runs, skipped=skipped)
    assert [r.run_dir for r in runs] == [tuned_dir.resolve()]
    (table,) = report.groups
    assert [row.n_runs for row in table.rows] == [1]
    assert any("hyperparameters chosen by a nested search" in n for n in table.notes)
    trials = [s for s in skipped if isinstance(s, SearchTrial)]
    assert sorted(t.trial for t in trials) == [0, 1, 2, 3, 4] and len(skipped) == 5
    assert {t.trial: t.record["status"] for t in trials}[4] == "pruned"
    text = format_markdown(report)
    assert "Hyperparameter-search trials (5, not in the comparison)" in text
    print(f"\nsearch: 3 trials in {first_seconds:.0f} s, resume to 4 in {resume_seconds:.0f} s")
    print((sweep / "trials.md").read_text())


def test_two_worker_processes_share_one_study_and_stop_at_n_trials(tiny_data_dir: Path, tmp_path: Path):
    """The same command started twice at once: two workers, one journal study, exactly n_trials trials."""
    conf = _tiny_conf(tmp_path)
    sweep = tmp_path / "search"
    cmd = _search_command(conf, sweep, 3)
    workers = [subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env=_env(tiny_data_dir)) for _ in range(2)]
    outs = [w.communicate(timeout=600)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], "\n".join(o[-3000:] for o in outs)
    study = _journal_study(sweep)
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 3
    ran = [int(re.search(r"this worker ran (\d+) trials", o).group(1)) for o in outs]
    assert sum(ran) == 3 and min(ran) >= 1, ran  # both pulled trials; none ran twice, none beyond n_trials
    owners = {t.user_attrs["cfnsr_owner"] for t in study.trials}
    assert len(owners) == 2
    assert sorted(_trial_folders(sweep)) == [0, 1, 2]
    # the sampler was seeded per trial: no two trials proposed the same settings
    assert len({json.dumps(t.params, sort_keys=True) for t in study.trials}) == 3


def test_the_study_in_a_database_with_sqlalchemy_2(tiny_data_dir: Path, tmp_path: Path):
    """search.storage=<RDB URL>: the study in SQLite through SQLAlchemy 2, no journal file."""
    sqlalchemy = require_module("sqlalchemy", "optuna")
    if int(sqlalchemy.__version__.split(".")[0]) < 2:
        pytest.skip(f"SQLAlchemy {sqlalchemy.__version__} installed; this checks the RDB storage under 2.x")
    conf = _tiny_conf(tmp_path)
    sweep = tmp_path / "search"
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    _run(_search_command(conf, sweep, 1, f"search.storage='{url}'"), tiny_data_dir)
    study = optuna.load_study(study_name="demo-cfnsr-paper-fold1", storage=url)
    assert [t.state.name for t in study.trials] == ["COMPLETE"] and not (sweep / "optuna.journal").exists()
    assert study.trials[0].intermediate_values  # the trial job reported into the database too
    table = _run([sys.executable, "-m", "cfnsr.search", "table", str(sweep), "--storage", url], tiny_data_dir)
    assert "| 0 (best) | COMPLETE |" in table.stdout
