"""Every shipped fusion config: interface, parameter counts, gradients and golden forward values."""

import pytest
import torch
from hydra.utils import get_class

from cfnsr.models.fusion.base import FusionModel, FusionOutput, stage_segments

# Exact parameter counts with the paper backbones (docs/paper-facts.md#parameter-counts; mcbp and mmtm are ours).
PAPER_PARAMS = {
    "video_only": 25_882_056,
    "audio_only": 34_024,
    "averaging": 25_916_080,
    "multiplication": 25_916_080,
    "multiplicative": 25_916_080,
    "concat_fc": 26_868_664,
    "mcbp": 26_044_088,
    "mmtm": 31_496_512,
    "msaf": 25_940_724,
    "cfnsr": 26_301_417,
}

# logits.sum() and logits[0, :3] of each fusion on the tiny backbones: seed 0, eval mode, tiny_inputs.
# They pin the math: a refactor that changes any of these must explain why.
GOLDEN = {
    "audio_only": (-0.841175, [-0.036381, -0.036507, -0.149504]),
    "averaging": (-33.336044, [-2.006387, -1.901139, -2.119669]),
    "cfnsr": (0.572081, [0.011593, 0.206056, 0.123518]),
    "concat_fc": (0.341470, [-0.005329, 0.062327, 0.022999]),
    "mcbp": (-0.017081, [0.007675, -0.005405, -0.002093]),
    "mmtm": (-1.334516, [0.084912, 0.297271, -0.121655]),
    "msaf": (-0.217205, [0.065139, 0.058161, 0.028548]),
    "multiplication": (-66.728310, [-4.015827, -3.803378, -4.239485]),
    "multiplicative": (-33.336044, [-2.006387, -1.901139, -2.119669]),
    "video_only": (-0.810089, [0.088697, 0.106493, -0.090529]),
}


def test_every_config_has_expectations(fusion_names):
    assert set(PAPER_PARAMS) == set(GOLDEN) == set(fusion_names)


def test_config_matches_class(conf, fusion_name):
    cfg = conf("fusion", fusion_name)
    cls = get_class(cfg.model._target_)
    assert issubclass(cls, FusionModel)
    assert cfg.name == fusion_name
    assert cfg.stage == cls.stage
    assert set(cfg.paper) == {"accuracy", "params"}


def test_paper_parameter_count(build, fusion_name):
    model = build(fusion_name, backbone="paper", meta=True)
    assert sum(p.numel() for p in model.parameters()) == PAPER_PARAMS[fusion_name]


def test_forward_output(build, fusion_name, tiny_inputs):
    model = build(fusion_name)
    out = model(*tiny_inputs)
    assert isinstance(out, FusionOutput)
    assert out.logits.shape == (2, 8)
    if out.streams is not None:
        assert all(s.shape == (2, 8) for s in out.streams.values())


def test_gradients_reach_every_backbone(build, fusion_name, tiny_inputs):
    model = build(fusion_name).train()
    model.loss(model(*tiny_inputs), torch.tensor([0, 3])).backward()
    for modality in model.modalities:
        first_conv = getattr(model, modality).conv1.weight
        assert first_conv.grad is not None and first_conv.grad.abs().sum() > 0, modality


def test_backbone_keys_are_the_unimodal_keys(build, fusion_name):
    model = build(fusion_name, meta=True)
    for modality in model.modalities:
        unimodal = build(f"{modality}_only", meta=True)
        fused_keys = {k for k in model.state_dict() if k.startswith(f"{modality}.")}
        assert fused_keys <= set(unimodal.state_dict())
        # Only the head may be missing (when the fusion drops it).
        head = getattr(model, modality).head_name
        assert all(k.startswith(f"{modality}.{head}.") for k in set(unimodal.state_dict()) - fused_keys)


def test_golden_values(build, fusion_name, tiny_inputs):
    model = build(fusion_name, seed=0).eval()
    with torch.no_grad():
        logits = model(*tiny_inputs).logits
    total, first = GOLDEN[fusion_name]
    torch.testing.assert_close(logits.sum(), torch.tensor(total), rtol=1e-4, atol=2e-5)
    torch.testing.assert_close(logits[0, :3], torch.tensor(first), rtol=1e-4, atol=2e-5)


def test_missing_backbone_is_reported(build):
    video = build("video_only").video
    with pytest.raises(ValueError, match="audio"):
        get_class("cfnsr.models.fusion.msaf.MSAF")(video, None, 8, fuse_after={"video": [], "audio": []})


def test_stage_segments():
    stages = ["stem", "layer1", "layer2", "layer3", "layer4"]
    assert stage_segments(stages, ["layer3", "layer4"]) == [
        ("stem", "layer1", "layer2", "layer3"), ("layer4",), ()]
    assert stage_segments(stages, []) == [tuple(stages)]
    with pytest.raises(ValueError, match="order"):
        stage_segments(stages, ["layer4", "layer3"])
