import math

import torch

from cfnsr.models.layers.transformer import TransformerEncoder, sinusoidal_positions


def _encoder(**overrides):
    settings = dict(dim=64, num_heads=8, num_layers=5, ffn_dim=256, attn_dropout=0.1, relu_dropout=0.1,
                    res_dropout=0.1, embed_dropout=0.3, causal=True)
    return TransformerEncoder(**{**settings, **overrides})


def test_cfnsr_parameter_count():
    assert sum(p.numel() for p in _encoder().parameters()) == 250_048
    assert sum(p.numel() for p in _encoder().layers[0].parameters()) == 49_984


def test_sinusoidal_positions_follow_fairseq():
    table = sinusoidal_positions(26, 64)
    assert table.shape == (26, 64)
    freq = math.exp(-3 * math.log(10000) / 31)  # frequency index 3 of 32
    assert math.isclose(table[4, 3].item(), math.sin(5 * freq), abs_tol=1e-6)  # row 4 is position 5
    assert math.isclose(table[4, 32 + 3].item(), math.cos(5 * freq), abs_tol=1e-6)
    assert sinusoidal_positions(3, 5)[:, -1].abs().sum() == 0  # odd width: zero last column


def test_causal_mask_hides_the_future():
    torch.manual_seed(0)
    encoder = _encoder(dim=16, num_layers=2, ffn_dim=64).eval()
    x = torch.randn(2, 10, 16)
    changed = x.clone()
    changed[:, 6:] += torch.randn(2, 4, 16)  # random: LayerNorm would cancel a constant shift
    out, out_changed = encoder(x), encoder(changed)
    torch.testing.assert_close(out[:, :6], out_changed[:, :6])
    assert not torch.allclose(out[:, 6:], out_changed[:, 6:])


def test_non_causal_sees_everything():
    torch.manual_seed(0)
    encoder = _encoder(dim=16, num_layers=1, ffn_dim=64, causal=False).eval()
    x = torch.randn(1, 5, 16)
    changed = x.clone()
    changed[:, -1] += torch.randn(1, 16)
    assert not torch.allclose(encoder(x)[:, 0], encoder(changed)[:, 0])
