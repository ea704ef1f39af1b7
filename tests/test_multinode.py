"""Two-node data parallel as users launch it: two torchrun launches (one per "node") on this machine, gloo on CPU.

Each launch is a separate ``train.py`` with its own Hydra folder (``separate``: as on two machines, where node 1
has no copy of node 0's files) or both in one folder (``shared``: a shared filesystem with a fixed
``hydra.run.dir``). Both must exit 0, rank 0 alone writes the record, and the test metrics count every test clip
of the fold exactly once, with both nodes taking part.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from tests_helpers import TINY_DATA, TINY_FOLDS

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("folders", ["separate", "shared"])
def test_two_torchrun_nodes_train_and_test_one_fold(tiny_data_dir: Path, tmp_path: Path, folders: str):
    port = _free_port()
    # fold 3 tests actors 5 and 6: 120 clips (60 per rank); validation (paper protocol) is the same 120 clips.
    overrides = [TINY_FOLDS, *TINY_DATA, f"paths.data_dir={tiny_data_dir}", "preprocess.workers=0",
                 "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=1", "trainer.num_nodes=2",
                 "trainer.max_epochs=1", "trainer.enable_progress_bar=false", "fusion=concat_fc", "fold=3",
                 "protocol=paper", "measure_gflops=false"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    procs = []
    for node in (0, 1):
        run_dir = tmp_path / ("run" if folders == "shared" else f"node{node}")
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node", "1",
               "--rdzv-backend", "c10d", "--rdzv-endpoint", f"localhost:{port}",
               str(ROOT / "train.py"), *overrides, f"hydra.run.dir={run_dir}"]
        log = open(tmp_path / f"node{node}.log", "w")  # noqa: SIM115 - closed below
        procs.append((subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT), log))
    codes = []
    for proc, log in procs:
        try:
            codes.append(proc.wait(timeout=600))
        finally:
            if proc.poll() is None:
                proc.kill()
            log.close()
    logs = {n: (tmp_path / f"node{n}.log").read_text() for n in (0, 1)}
    assert codes == [0, 0], f"exit codes {codes}\n--- node 0:\n{logs[0][-3000:]}\n--- node 1:\n{logs[1][-3000:]}"

    records = sorted(tmp_path.rglob("metrics.json"))
    assert len(records) == 1, records  # rank 0 alone writes a record
    record = json.loads(records[0].read_text())
    assert record["status"] == "finished"
    assert (record["world_size"], record["num_nodes"]) == (2, 2)
    for tag in ("test", "test_last"):
        result = record[tag]
        ranks = result["ranks"]
        assert [r["rank"] for r in ranks] == [0, 1]
        assert sorted(r["node"] for r in ranks) == [0, 1]  # one process on each node
        assert [r["clips"] for r in ranks] == [60, 60]
        # Every test clip counted once: 120 clips, 8 per neutral and 16 per other emotion (2 actors).
        assert result["n"] == 120
        assert [sum(row) for row in result["confusion"]] == [8] + [16] * 7
    if folders == "separate":  # node 1 wrote nothing of the run: no checkpoints, results or config of its own
        assert not (tmp_path / "node1" / "checkpoints").exists()
        assert not (tmp_path / "node1" / "test_results").exists()
