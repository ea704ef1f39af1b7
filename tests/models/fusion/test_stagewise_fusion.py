"""MSAF and MMTM models: block sizes derived from the backbones, and the stage walk."""

import torch

from cfnsr.models.fusion.base import FusionOutput


def test_msaf_paper_blocks(build):
    model = build("msaf", backbone="paper", meta=True)
    assert [b.block_channel for b in model.blocks] == [16, 32]
    assert [b.num_blocks for b in model.blocks] == [[64, 2], [64, 2]]
    assert model.fusion_channels == [(1024, 32), (2048, 64)]


def test_msaf_tiny_blocks_follow_the_backbones(build):
    model = build("msaf")
    assert model.fusion_channels == [(128, 8), (256, 16)]
    assert [b.block_channel for b in model.blocks] == [4, 8]


def test_mmtm_paper_blocks(build):
    model = build("mmtm", backbone="paper", meta=True)
    assert [b.squeeze.out_features for b in model.blocks] == [528, 1056]


def test_forward_walks_stages_and_sums_heads(build, tiny_inputs):
    model = build("mmtm").eval()
    video, audio = tiny_inputs
    v = model.video.forward_stages(video, ["stem", "layer1", "layer2", "layer3"])
    a = model.audio.forward_stages(audio, ["conv1", "conv2"])
    v, a = model.blocks[0](v, a)
    v, a = model.blocks[1](model.video.forward_stage("layer4", v), model.audio.forward_stage("conv3", a))
    out = model(video, audio)
    assert isinstance(out, FusionOutput)
    torch.testing.assert_close(out.streams["video"], model.video.head(model.video.pool(v)))
    torch.testing.assert_close(out.logits, out.streams["video"] + model.audio.head(model.audio.pool(a)))


def test_identity_blocks_give_the_unimodal_sum(build, tiny_inputs):
    """MMTM with zero excitation gates by 2 * sigmoid(0) = 1: the model reduces to summing unimodal logits."""
    model = build("mmtm").eval()
    for block in model.blocks:
        for layer in (block.excite_a, block.excite_b):
            torch.nn.init.zeros_(layer.weight)
            torch.nn.init.zeros_(layer.bias)
    video, audio = tiny_inputs
    torch.testing.assert_close(model(video, audio).logits, model.video(video) + model.audio(audio))
