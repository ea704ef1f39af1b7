import torch

from cfnsr.models.layers.mmtm_block import MMTM


def test_paper_sizes():
    assert sum(p.numel() for p in MMTM(1024, 32, ratio=4).parameters()) == 1_116_720
    assert sum(p.numel() for p in MMTM(2048, 64, ratio=4).parameters()) == 4_463_712


def test_gating_formula():
    torch.manual_seed(0)
    mmtm = MMTM(6, 4, ratio=4)
    a, b = torch.randn(2, 6, 3, 2, 2), torch.randn(2, 4, 5)
    out_a, out_b = mmtm(a, b)
    s = torch.cat([a.mean(dim=(2, 3, 4)), b.mean(dim=2)], dim=1)
    z = torch.relu(s @ mmtm.squeeze.weight.T + mmtm.squeeze.bias)
    gate_a = 2 * torch.sigmoid(z @ mmtm.excite_a.weight.T + mmtm.excite_a.bias)
    gate_b = 2 * torch.sigmoid(z @ mmtm.excite_b.weight.T + mmtm.excite_b.bias)
    assert mmtm.squeeze.out_features == 5  # int(2 * 10 / 4)
    torch.testing.assert_close(out_a, a * gate_a[:, :, None, None, None])
    torch.testing.assert_close(out_b, b * gate_b[:, :, None])
