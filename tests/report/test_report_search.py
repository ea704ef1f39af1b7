"""Search trials never enter a comparison table; tuned runs are rows whose notes say how they were chosen."""

from __future__ import annotations

from pathlib import Path

from report_fixtures import RunWriter, make_record

from cfnsr.report import SearchTrial, build_report, collect_runs
from cfnsr.runs.record import write_record


def _trial(tmp_path: Path, number: int, value: float) -> None:
    rec = make_record("cfnsr", 1, 1, 200, protocol="clean")
    rec.update(protocol="search", test=None, test_last=None, val_actors=[9, 10, 11, 12],
               objective={"name": "val/war", "value": value, "epoch": 2},
               search={"study": "demo-cfnsr-paper-fold1", "trial": number, "outer_fold": 1, "objective": "val/war"})
    write_record(tmp_path / "multirun" / f"{number}_trial", rec)


def test_trials_are_listed_apart_and_tuned_runs_say_how_they_were_chosen(tmp_path: Path, write_run: RunWriter):
    for number, value in ((0, 0.4), (1, 0.55)):
        _trial(tmp_path, number, value)
    how = "optuna study demo-cfnsr-paper-fold1 (2 completed trials): trial 1, val/war 0.5500"
    tuned = write_run("cfnsr", 1, 1, 180, protocol="clean")
    record = tuned.read_text().replace('"fold": 1,', '"fold": 1, "hparams": {"chosen_by": "' + how + '"},', 1)
    tuned.write_text(record)
    write_run("msaf", 1, 1, 170, protocol="clean")

    runs, skipped = collect_runs([tmp_path / "multirun"])
    assert sorted(r.fusion for r in runs) == ["cfnsr", "msaf"]  # a trial is never a run, even when finished
    trials = [s for s in skipped if isinstance(s, SearchTrial)]
    assert sorted(t.trial for t in trials) == [0, 1] and len(skipped) == 2
    report = build_report(runs, skipped=skipped)
    (table,) = report.groups
    assert sum(r.n_runs for r in table.rows) == 2
    assert f"CFN-SR: hyperparameters chosen by a nested search per outer fold (fold 1: {how})." in table.notes
    assert "MSAF: hyperparameters set in the config (not tuned)." in table.notes
    by_number = {t.trial: t for t in report.skipped if isinstance(t, SearchTrial)}
    assert by_number[1].objective == 0.55 and by_number[1].study == "demo-cfnsr-paper-fold1"
    assert by_number[1].record["val_actors"] == [9, 10, 11, 12]
    assert [s for s in report.skipped if not isinstance(s, SearchTrial)] == []  # no skipped run besides the trials


def test_untuned_tables_get_no_hyperparameter_note(write_run: RunWriter, tmp_path: Path):
    write_run("cfnsr", 1, 1, 180, protocol="clean")
    (table,) = build_report(collect_runs([tmp_path / "multirun"])[0]).groups
    assert not any("hyperparameters" in n for n in table.notes)
