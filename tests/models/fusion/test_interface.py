"""Every fusion config on the search path: interface, gradients, checkpoint keys; the paper's methods also their
exact parameter counts and golden forward values."""

import pytest
import torch
from fusion_pins import GOLDEN, PAPER_PARAMS
from hydra.utils import get_class, instantiate
from tests_helpers import fusions

from cfnsr.models.fusion.base import FusionModel, FusionOutput, stage_segments

PAPER_METHODS = [name for name, facts in fusions().items() if facts.paper is not None]


def test_every_paper_method_is_pinned():
    """Exactly the fusions with a ``paper:`` entry have pins; the others need none."""
    assert set(PAPER_PARAMS) == set(GOLDEN) == set(PAPER_METHODS)


def test_config_names_a_fusion_class(conf, fusion_name):
    cfg = conf("fusion", fusion_name)
    assert issubclass(get_class(cfg.model._target_), FusionModel)
    assert cfg.name == fusion_name
    assert cfg.get("paper") is None or set(cfg.paper) == {"accuracy", "params"}


@pytest.mark.parametrize("fusion_name", PAPER_METHODS)
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


@pytest.mark.parametrize("fusion_name", PAPER_METHODS)
def test_golden_values(build, fusion_name, tiny_inputs):
    model = build(fusion_name, seed=0).eval()
    with torch.no_grad():
        logits = model(*tiny_inputs).logits
    total, first = GOLDEN[fusion_name]
    torch.testing.assert_close(logits.sum(), torch.tensor(total), rtol=1e-4, atol=2e-5)
    torch.testing.assert_close(logits[0, :3], torch.tensor(first), rtol=1e-4, atol=2e-5)


def test_missing_backbone_is_reported(build, conf):
    video = build("video_only").video
    with pytest.raises(ValueError, match="audio"):
        instantiate(conf("fusion", "msaf").model, _partial_=True, _convert_="all")(video, None, 8)


def test_stage_segments():
    stages = ["stem", "layer1", "layer2", "layer3", "layer4"]
    assert stage_segments(stages, ["layer3", "layer4"]) == [
        ("stem", "layer1", "layer2", "layer3"), ("layer4",), ()]
    assert stage_segments(stages, []) == [tuple(stages)]
    with pytest.raises(ValueError, match="order"):
        stage_segments(stages, ["layer4", "layer3"])
