"""``optuna-dashboard <sweep>/optuna.journal`` serves a search's study: checked over loopback HTTP."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from tests_helpers import require_module

pytestmark = pytest.mark.slow  # the dashboard server takes seconds to start


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, deadline: float) -> dict:
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                return json.loads(r.read())
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(1)


def test_optuna_dashboard_reads_the_journal_study(tmp_path: Path):
    optuna = require_module("optuna", "optuna")
    require_module("optuna_dashboard", "optuna")
    from cfnsr.runs.study_storage import open_storage
    from cfnsr.search.sweeper import OWNER_ATTR

    journal = tmp_path / "search" / "optuna.journal"
    study = optuna.create_study(study_name="demo-cfnsr-paper-fold1", storage=open_storage(str(journal)),
                                direction="maximize")
    space = {"optimizer.lr": optuna.distributions.FloatDistribution(1e-5, 1e-2, log=True)}
    done = study.ask(space)
    done.set_user_attr(OWNER_ATTR, "node:1")
    done.report(0.25, 0)
    done.report(0.5, 1)
    study.tell(done, 0.5)
    pruned = study.ask(space)
    pruned.report(0.1, 0)
    study.tell(pruned, state=optuna.trial.TrialState.PRUNED)

    port = _free_port()
    server = subprocess.Popen([shutil.which("optuna-dashboard") or "optuna-dashboard", str(journal),
                               "--port", str(port), "--host", "127.0.0.1"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 120
        summaries = _get(f"http://127.0.0.1:{port}/api/studies", deadline)["study_summaries"]
        assert [s["study_name"] for s in summaries] == ["demo-cfnsr-paper-fold1"]
        detail = _get(f"http://127.0.0.1:{port}/api/studies/{summaries[0]['study_id']}", deadline)
        trials = {t["number"]: t for t in detail["trials"]}
        assert {n: t["state"] for n, t in trials.items()} == {0: "Complete", 1: "Pruned"}
        assert trials[0]["intermediate_values"] == [{"step": 0, "value": 0.25}, {"step": 1, "value": 0.5}]
        assert trials[0]["params"][0]["name"] == "optimizer.lr"
    finally:
        server.terminate()
        server.wait(timeout=30)
