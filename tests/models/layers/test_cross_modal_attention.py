import torch

from cfnsr.models.layers.cross_modal_attention import CrossModalAttention


def _inputs():
    g = torch.Generator().manual_seed(0)
    return torch.randn(3, 12, 2, 4, 4, generator=g), torch.randn(3, 6, generator=g)


def test_map_is_a_softmax_over_space_per_slice():
    torch.manual_seed(0)
    block = CrossModalAttention(video_channels=12, audio_dim=6, k=5)
    x, y = _inputs()
    attention = block.attention_map(x, y)
    assert attention.shape == (3, 2, 4, 4)
    torch.testing.assert_close(attention.sum(dim=(2, 3)), torch.ones(3, 2))
    # By hand for sample 1, slice 0, position (2, 3).
    q = torch.tanh(block.channel_affine(x[1, :, :, :, :].movedim(0, -1)) + block.y_affine(y[1]))
    scores = block.attn_weight_affine(q).squeeze(-1)[0]  # (4, 4)
    torch.testing.assert_close(attention[1, 0, 2, 3], scores.flatten().softmax(0)[2 * 4 + 3])


def test_residual_option():
    torch.manual_seed(0)
    block = CrossModalAttention(12, 6, 5, residual=True)
    plain = CrossModalAttention(12, 6, 5, residual=False)
    plain.load_state_dict(block.state_dict())
    x, y = _inputs()
    attention = block.attention_map(x, y)[:, None]
    torch.testing.assert_close(block(x, y), x * (1 + attention))
    torch.testing.assert_close(plain(x, y), x * attention)


def test_samples_are_independent_unless_maps_are_summed_over_the_batch():
    torch.manual_seed(0)
    per_sample = CrossModalAttention(12, 6, 5)
    summed = CrossModalAttention(12, 6, 5, batch_sum_attention=True)
    summed.load_state_dict(per_sample.state_dict())
    x, y = _inputs()
    torch.testing.assert_close(per_sample(x, y)[:1], per_sample(x[:1], y[:1]))
    assert not torch.allclose(summed(x, y)[:1], summed(x[:1], y[:1]))
    torch.testing.assert_close(summed(x, y), x * (1 + per_sample.attention_map(x, y).sum(0)[None, None]))
