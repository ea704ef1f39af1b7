import pytest
import torch
from tests_helpers import make
from torch.utils.flop_counter import FlopCounterMode

from cfnsr.models.backbones.resnext3d import ResNeXt3D


def resnext(backbone: str, num_classes: int = 8, **changes) -> ResNeXt3D:
    """The video backbone of conf/backbone/<backbone>.yaml (paper: ResNeXt-50), with a test's ``changes``."""
    model = make("backbone", backbone, "video", num_classes=num_classes, **changes)
    assert isinstance(model, ResNeXt3D)
    return model


def test_resnext50_parameter_count():
    with torch.device("meta"):
        model = resnext("paper")
    assert sum(p.numel() for p in model.parameters()) == 25_882_056
    assert sum(p.numel() for p in model.fc.parameters()) == 16_392


def test_paper_size_stage_shapes():
    with torch.device("meta"):
        model = resnext("paper")
        x = torch.empty(2, 3, 30, 224, 224)
    expected = {
        "stem": (2, 64, 15, 56, 56), "layer1": (2, 256, 15, 56, 56), "layer2": (2, 512, 8, 28, 28),
        "layer3": (2, 1024, 4, 14, 14), "layer4": (2, 2048, 2, 7, 7),
    }
    for name in model.stage_names:
        x = model.forward_stage(name, x)
        assert tuple(x.shape) == expected[name]
        assert x.shape[1] == model.channels_of(name)
    assert model.pool(x).shape == (2, 2048) == (2, model.feature_dim)


def test_kenshohara_key_layout():
    with torch.device("meta"):
        keys = set(resnext("paper").state_dict())
    for key in ["conv1.weight", "bn1.running_mean", "layer1.0.conv1.weight", "layer1.0.bn3.bias",
                "layer1.0.downsample.0.weight", "layer1.0.downsample.1.weight", "layer3.5.conv2.weight",
                "layer4.2.bn2.weight", "fc.weight", "fc.bias"]:
        assert key in keys
    assert "layer1.1.downsample.0.weight" not in keys  # shortcut B: identity after the first block


def test_forward_small_clip_any_size():
    model = resnext("tiny", num_classes=5).eval()
    for shape in [(2, 3, 8, 32, 32), (1, 3, 5, 40, 24)]:
        assert model(torch.randn(shape)).shape == (shape[0], 5)


def test_features_then_head_is_forward():
    model = resnext("tiny").eval()
    x = torch.randn(2, 3, 8, 32, 32)
    torch.testing.assert_close(model(x), model.head(model.features(x)))


def test_stem_relu_option_changes_function_not_keys():
    torch.manual_seed(0)
    with_relu = resnext("tiny").eval()
    without = resnext("tiny", stem_relu=False).eval()
    with torch.no_grad():
        with_relu.bn1.bias.fill_(-10.0)  # makes whole pooling windows negative, where the ReLU shows
    without.load_state_dict(with_relu.state_dict())
    x = torch.randn(2, 3, 8, 32, 32)
    no_relu_stem = without.maxpool(without.bn1(without.conv1(x)))
    torch.testing.assert_close(without.forward_stage("stem", x), no_relu_stem)
    assert not torch.allclose(with_relu.forward_stage("stem", x), no_relu_stem)


def test_remove_head():
    model = resnext("tiny")
    model.remove_head()
    assert model.head is None and not any(k.startswith("fc.") for k in model.state_dict())
    with pytest.raises(RuntimeError, match="no head"):
        model(torch.randn(1, 3, 8, 32, 32))


def test_tiny_config_is_cheap():
    model = resnext("tiny").eval()
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.zeros(1, 3, 16, 64, 64))
    assert counter.get_total_flops() <= 60e6


def test_unknown_stage():
    with pytest.raises(KeyError, match="layer5"):
        resnext("tiny").forward_stage("layer5", torch.zeros(1))
