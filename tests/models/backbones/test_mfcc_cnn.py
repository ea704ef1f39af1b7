import torch
from tests_helpers import make
from torch import nn
from torch.nn import functional as F

from cfnsr.models.backbones.mfcc_cnn import MFCCCNN


def paper_cnn() -> MFCCCNN:
    """The paper's 1D CNN, as conf/backbone/paper.yaml configures it, with an 8-class head."""
    model = make("backbone", "paper", "audio", num_classes=8)
    assert isinstance(model, MFCCCNN)
    return model


def test_parameter_count():
    model = paper_cnn()
    assert sum(p.numel() for p in model.parameters()) == 34_024
    assert sum(p.numel() for p in model.fc1.parameters()) == 13_320


def test_paper_size_stage_shapes():
    model = paper_cnn().eval()
    x = torch.randn(2, 13, 212)
    expected = {"conv1": (2, 32, 210), "conv2": (2, 32, 208), "conv3": (2, 64, 26)}
    for name in model.stage_names:
        x = model.forward_stage(name, x)
        assert tuple(x.shape) == expected[name]
    assert model.pool(x).shape == (2, 1664) == (2, model.feature_dim)
    assert model.stage_channels == [32, 32, 64]


def test_adaptive_pool_matches_reference_maxpool_at_paper_length():
    x = torch.randn(2, 32, 208)
    torch.testing.assert_close(paper_cnn().pool_time(x), nn.MaxPool1d(8)(x))


def test_other_mfcc_lengths_still_fit_the_head():
    model = paper_cnn().eval()
    for length in (100, 212, 300):
        assert model(torch.randn(2, 13, length)).shape == (2, 8)


def test_relu_comes_before_batchnorm():
    model = paper_cnn().eval()
    with torch.no_grad():
        model.bn1.running_mean.fill_(1.0)  # a BN after the ReLU then shifts outputs below zero
    x = torch.randn(2, 13, 212)
    torch.testing.assert_close(model.forward_stage("conv1", x), model.bn1(F.relu(model.conv1(x))))
    assert (model.forward_stage("conv1", x) < 0).any()


def test_forward_is_head_of_flattened_features():
    model = paper_cnn().eval()
    x = torch.randn(3, 13, 212)
    y = model.forward_stages(x, model.stage_names)
    torch.testing.assert_close(model(x), model.fc1(y.flatten(1)))
