"""Parameter, FLOP and latency measurements."""

from pathlib import Path

import pytest
import torch
from fusion_pins import PAPER_PARAMS
from tests_helpers import load_conf as _conf

from cfnsr.models.build import build_model
from cfnsr.models.complexity import count_params, cpu_latency_ms, gflops_per_clip
from cfnsr.tasks.complexity import complexity_table, format_table

CONF = Path(__file__).resolve().parents[1] / "conf"


def _tiny(fusion):
    torch.manual_seed(0)
    return build_model(_conf("backbone", "tiny"), _conf("fusion", fusion), num_classes=8)


def test_count_params_counts_frozen_heads_unless_asked():
    model = _tiny("concat_fc")
    frozen = sum(p.numel() for m in (model.video.fc, model.audio.fc1) for p in m.parameters())
    assert count_params(model) - count_params(model, trainable_only=True) == frozen > 0


def test_gflops_of_a_linear_layer():
    class Probe(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(10, 3)

        def forward(self, video, audio):
            return self.fc(video)

    assert gflops_per_clip(Probe(), (10,), (1,)) == pytest.approx(2 * 10 * 3 / 1e9)


def test_meta_and_cpu_models_count_the_same_flops():
    with torch.device("meta"):
        meta = build_model(_conf("backbone", "tiny"), _conf("fusion", "msaf"), 8)
    cpu = _tiny("msaf").train()
    shapes = ((3, 16, 64, 64), (13, 212))
    assert gflops_per_clip(meta, *shapes) == gflops_per_clip(cpu, *shapes)
    assert cpu.training  # the mode is restored


def test_cpu_latency_is_positive():
    assert cpu_latency_ms(_tiny("audio_only"), (3, 4, 16, 16), (13, 212), repeats=2) > 0


def test_complexity_table():
    fusions = {name: _conf("fusion", name) for name in ("video_only", "msaf", "cfnsr")}
    rows = complexity_table(_conf("backbone", "paper"), fusions, clip=(30, 224, 13, 212), num_classes=8)
    assert [r["params"] for r in rows] == [PAPER_PARAMS[name] for name in fusions]
    assert rows[0]["gflops"] == pytest.approx(113.15, abs=0.01)  # the paper ResNeXt-50, 30x224x224
    assert rows[2]["gflops"] > rows[0]["gflops"]
    assert rows[2]["paper_params"] == "26.30M" and rows[2]["stage"] == "Model"
    assert "| cfnsr | Model | 26,301,417 |" in format_table(rows)


def test_complexity_table_with_latency():
    rows = complexity_table(_conf("backbone", "tiny"), {"mmtm": _conf("fusion", "mmtm")}, clip=(8, 32, 13, 212), num_classes=8,
                            latency=True, repeats=1)
    assert rows[0]["latency_ms"] > 0


def test_a_fusion_without_paper_numbers_gets_dashes():
    fusion = _conf("fusion", "averaging")
    del fusion["paper"]
    (row,) = complexity_table(_conf("backbone", "tiny"), {"mine": fusion}, clip=(4, 32, 13, 212), num_classes=8)
    assert row["paper_params"] is None and row["paper_accuracy"] is None and row["stage"] == "Late"
    assert "| mine | Late |" in format_table([row]) and format_table([row]).endswith("| – | – |")


def _compose(name: str, overrides: list[str]):
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(name, overrides=overrides)


@pytest.mark.parametrize("overrides", [[], ["experiment=paper_fusion"], ["backbone=paper", "data.frames=8"]])
def test_complexity_cli_measures_the_clip_shape_training_uses(overrides):
    from cfnsr.builders.objects import clip_shapes

    train_cfg, cx_cfg = _compose("train", overrides), _compose("complexity", overrides)
    assert clip_shapes(cx_cfg) == clip_shapes(train_cfg)
    assert cx_cfg.backbone == train_cfg.backbone
    assert cx_cfg.latency is False  # latency only on request
    assert cx_cfg.get("fusion") is None and _compose("complexity", [*overrides, "fusion=msaf"]).fusion.name == "msaf"


@pytest.mark.slow
def test_complexity_cli_reports_the_training_summary_gflops_without_latency(tmp_path: Path):
    import subprocess
    import sys

    from cfnsr.builders.objects import build_module, clip_shapes

    cfg = _compose("train", ["fusion=cfnsr"])
    expected = gflops_per_clip(build_module(cfg, load_init=False)[0].model, *clip_shapes(cfg))
    done = subprocess.run([sys.executable, "complexity.py", "fusion=cfnsr", f"hydra.run.dir={tmp_path}"],
                          cwd=CONF.parent, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    (row,) = [line for line in done.stdout.splitlines() if line.startswith("| cfnsr |")]
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[3] == f"{expected:.3f}" and cells[4] == "–"  # what train.py's summary reports; no latency
    assert "backbone=tiny" in done.stdout and "latency=true measures it" in done.stdout
