"""Adding a fusion = one module + one YAML, outside the repository: the fusion test suite, a training run, the
report and the complexity CLI all take it with no other edit (the README's "Add your own fusion")."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests_helpers import TINY_DATA, TINY_FOLDS

from cfnsr.report import build_report, collect_runs, format_markdown
from cfnsr.runs.record import read_record

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow

MODULE = '''\
"""Gated sum: a learned per-class gate g = sigmoid(w) mixes the two streams' logits, g l_v + (1 - g) l_a."""

import torch
from torch import nn

from cfnsr.models.fusion.base import FusionModel, FusionOutput


class GatedSum(FusionModel):
    def __init__(self, video, audio, num_classes, *, init_gate: float):
        super().__init__(video, audio, num_classes)
        self.gate = nn.Parameter(torch.full((num_classes,), float(init_gate)))

    def forward(self, video, audio):
        """video (B, 3, T, H, W), audio (B, n_mfcc, L) -> logits (B, K) and each stream's logits."""
        streams = {"video": self.video(video), "audio": self.audio(audio)}
        g = torch.sigmoid(self.gate)
        return FusionOutput(g * streams["video"] + (1 - g) * streams["audio"], streams)
'''

YAML = '''\
name: gated_sum
stage: Late
display: Gated sum
order: 35                 # between Averaging (30) and Multiplicative (40)
model:
  _target_: gated_sum.GatedSum
  init_gate: 0.0          # sigmoid(0) = 0.5: starts as the mean of the two streams' logits
'''


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], str]:
    """(environment with the module importable, hydra.searchpath override naming the config folder)."""
    root = tmp_path_factory.mktemp("toy_fusion")
    (root / "code").mkdir()
    (root / "code" / "gated_sum.py").write_text(MODULE)
    (root / "conf" / "fusion").mkdir(parents=True)
    (root / "conf" / "fusion" / "gated_sum.yaml").write_text(YAML)
    searchpath = f"file://{root / 'conf'}"
    pythonpath = os.pathsep.join([str(root / "code"), str(ROOT), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": pythonpath, "CFNSR_TEST_SEARCHPATH": searchpath}
    return env, f"hydra.searchpath=[{searchpath}]"


def _run(cmd: list[str], env: dict[str, str], timeout: int = 3600) -> str:  # a hang guard, not a speed test
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env)
    assert done.returncode == 0, (done.stdout[-4000:], done.stderr[-4000:])
    return done.stdout


def test_the_fusion_suite_covers_it(toy: tuple[dict[str, str], str]):
    env, _ = toy
    out = _run([sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider", "tests/models/fusion",
                "tests/test_fusion_uses_both_streams.py", "tests/test_config_defaults.py", "tests/test_configs.py",
                "-k", "gated_sum or pinned"], env)
    passed = {line.split("::")[1].split(" ")[0] for line in out.splitlines() if "::" in line and " PASSED" in line}
    # the interface, the config rules, composition, the synergy check (a "Late" fusion: trained on the synergy pair,
    # held to the additive bound), and the pins, which ask nothing of a fusion without paper numbers
    for test in ("test_forward_output", "test_gradients_reach_every_backbone",
                 "test_backbone_keys_are_the_unimodal_keys", "test_config_names_a_fusion_class", "test_every_fusion_config_names_itself",
                 "test_every_fusion_has_an_expectation", "test_synergy_expectation_of_every_fusion"):
        assert f"{test}[gated_sum]" in passed, (test, sorted(passed))
    assert any(t.startswith("test_yaml_and_constructor_do_not_restate_each_other[fusion/gated_sum") for t in passed)
    assert "test_every_paper_method_is_pinned" in passed
    assert " failed" not in out and " skipped" not in out, out[-2000:]


def test_it_trains_and_appears_in_the_report(toy: tuple[dict[str, str], str], tiny_data_dir: Path,
                                             tmp_path: Path):
    env, searchpath = toy
    run_dir = tmp_path / "run"
    _run([sys.executable, "train.py", "fusion=gated_sum", searchpath, TINY_FOLDS, *TINY_DATA, "fold=1",
          "trainer.max_epochs=1", "trainer.enable_progress_bar=false", "preprocess.workers=0", "measure_gflops=false",
          "logger=csv", f"hydra.run.dir={run_dir}"], {**env, "CFNSR_DATA_DIR": str(tiny_data_dir)})
    record = read_record(run_dir)
    assert record["status"] == "finished" and record["fusion"] == "gated_sum" and record["paper"] is None
    assert (record["fusion_stage"], record["fusion_display"], record["fusion_order"]) == ("Late", "Gated sum", 35)
    runs, _ = collect_runs([run_dir])
    assert "| Gated sum | Late | 1 (1 fold × 1 seed) |" in format_markdown(build_report(runs))


def test_the_complexity_cli_and_the_fusion_list_include_it(toy: tuple[dict[str, str], str], tmp_path: Path):
    env, searchpath = toy
    table = _run([sys.executable, "complexity.py", "backbone=tiny", "data=synthetic", "latency=false",
                  searchpath, f"hydra.run.dir={tmp_path}"], env)
    rows = [line for line in table.splitlines() if line.startswith("| ")]
    names = [row.split("|")[1].strip() for row in rows[1:]]
    assert names.index("averaging") + 1 == names.index("gated_sum") == names.index("multiplicative_loss") - 1
    (gated,) = [row for row in rows if row.startswith("| gated_sum |")]
    assert gated.startswith("| gated_sum | Late | ") and gated.endswith("| – | – |")  # no paper numbers: dashes
    fused = _run([sys.executable, "-m", "cfnsr.models.fusion.registry", "--kind", "fused", searchpath], env)
    assert "averaging,gated_sum,multiplicative_loss" in fused.strip()
