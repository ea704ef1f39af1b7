import torch
from torch.nn import functional as F

from cfnsr.models.layers.msaf_block import MSAFBlock


def _inputs():
    g = torch.Generator().manual_seed(0)
    return torch.randn(3, 8, 2, 4, 4, generator=g), torch.randn(3, 4, 10, generator=g)


def test_paper_block_sizes():
    msaf1 = MSAFBlock((1024, 32), block_channel=16, reduction=4, block_dropout=0.2)
    msaf2 = MSAFBlock((2048, 64), block_channel=32, reduction=4, block_dropout=0.2)
    assert msaf1.num_blocks == [64, 2] and msaf2.num_blocks == [64, 2]
    assert sum(p.numel() for p in msaf1.parameters()) == 5_356
    assert sum(p.numel() for p in msaf2.parameters()) == 19_288


def test_attention_is_softmax_over_blocks_and_matches_manual_computation():
    torch.manual_seed(0)
    block = MSAFBlock((8, 4), block_channel=2, reduction=2, block_dropout=0.2).eval()
    with torch.no_grad():  # non-trivial BN statistics
        block.join[1].running_mean.uniform_(-1, 1)
        block.join[1].running_var.uniform_(0.5, 2)
    video, audio = _inputs()
    out_video, out_audio = block(video, audio)

    # By hand: 4 video blocks and 2 audio blocks of 2 channels.
    vb, ab = video.view(3, 4, 2, 2, 4, 4), audio.view(3, 2, 2, 10)
    u = vb.sum(1).mean(dim=(2, 3, 4)) + ab.sum(1).mean(dim=2)  # (B, c)
    linear, bn = block.join[0], block.join[1]
    z = F.relu((linear(u) - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps) * bn.weight + bn.bias)
    logits = (z @ block.highlight.weight.T + block.highlight.bias).view(3, 6, 2)
    weights = logits.exp() / logits.exp().sum(dim=1, keepdim=True)

    torch.testing.assert_close(weights.sum(dim=1), torch.ones(3, 2))
    torch.testing.assert_close(block.attention([vb, ab]), weights)
    torch.testing.assert_close(out_video, (vb * weights[:, :4, :, None, None, None]).reshape(3, 8, 2, 4, 4))
    torch.testing.assert_close(out_audio, (ab * weights[:, 4:, :, None]).reshape(3, 4, 10))


def test_channels_not_divisible_by_block_are_padded_then_cropped():
    block = MSAFBlock((10, 6), block_channel=4, reduction=2, block_dropout=0.0).eval()
    assert block.num_blocks == [3, 2]
    video, audio = torch.randn(2, 10, 5), torch.randn(2, 6, 7)
    out_video, out_audio = block(video, audio)
    assert out_video.shape == video.shape and out_audio.shape == audio.shape
    padded = torch.cat([video, torch.zeros(2, 2, 5)], dim=1).view(2, 3, 4, 5)
    weights = block.attention([padded, torch.cat([audio, torch.zeros(2, 2, 7)], dim=1).view(2, 2, 4, 7)])
    torch.testing.assert_close(out_video, (padded * weights[:, :3, :, None]).flatten(1, 2)[:, :10])


def test_block_dropout_is_per_sample_and_applied_once():
    video, audio = _inputs()
    p = 0.5
    single = MSAFBlock((8, 4), block_channel=2, reduction=2, block_dropout=p).train()
    double = MSAFBlock((8, 4), block_channel=2, reduction=2, block_dropout=p, double_dropout_mask=True).train()
    double.load_state_dict(single.state_dict())
    torch.manual_seed(5)
    once = single(video, audio)[0].view(3, 4, 2, 2, 4, 4)
    torch.manual_seed(5)
    twice = double(video, audio)[0].view(3, 4, 2, 2, 4, 4)
    dropped = once.flatten(2).abs().sum(-1) == 0  # (B, blocks)
    assert dropped.any() and (~dropped).any()
    assert not (dropped == dropped[:1]).all(), "every sample drew the same mask"
    # The twice-applied mask scales the survivors once more by 1 / (1 - p).
    torch.testing.assert_close(twice[~dropped], once[~dropped] / (1 - p))


def test_no_dropout_in_eval():
    block = MSAFBlock((8, 4), block_channel=2, reduction=2, block_dropout=0.9).eval()
    video, audio = _inputs()
    torch.testing.assert_close(block(video, audio)[0], block(video, audio)[0])
