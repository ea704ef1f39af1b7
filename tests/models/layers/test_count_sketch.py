import torch

from cfnsr.models.layers.count_sketch import CountSketch, circular_convolution


def test_count_sketch_is_a_signed_bucket_sum():
    sketch = CountSketch(in_dim=6, out_dim=4, seed=0)
    x = torch.randn(3, 6)
    dense = torch.zeros(6, 4)
    dense[torch.arange(6), sketch.index] = sketch.sign
    torch.testing.assert_close(sketch(x), x @ dense)


def test_sketches_are_seeded_buffers_not_parameters():
    a, b = CountSketch(10, 7, seed=3), CountSketch(10, 7, seed=3)
    assert list(a.parameters()) == []
    assert set(a.state_dict()) == {"index", "sign"}
    assert torch.equal(a.index, b.index) and torch.equal(a.sign, b.sign)
    assert set(a.sign.tolist()) <= {-1.0, 1.0}


def test_convolved_sketches_are_the_sketch_of_the_outer_product():
    """Psi(v ⊗ a) with h(i, j) = h_v(i) + h_a(j) mod d and s(i, j) = s_v(i) s_a(j)."""
    d = 5
    sv, sa = CountSketch(4, d, seed=0), CountSketch(3, d, seed=1)
    v, a = torch.randn(2, 4, dtype=torch.float64), torch.randn(2, 3, dtype=torch.float64)
    sv.sign, sa.sign = sv.sign.double(), sa.sign.double()
    expected = torch.zeros(2, d, dtype=torch.float64)
    for i in range(4):
        for j in range(3):
            bucket = (sv.index[i] + sa.index[j]) % d
            expected[:, bucket] += sv.sign[i] * sa.sign[j] * v[:, i] * a[:, j]
    torch.testing.assert_close(circular_convolution(sv(v), sa(a)), expected)
