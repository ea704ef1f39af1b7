import torch
from tests_helpers import make


def _clips(b=4, t=5, h=24, w=32):
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (b, t, h, w, 3), generator=g, dtype=torch.uint8)


def test_eval_only_converts_and_normalises():
    aug = make("augment", "default").eval()
    v = _clips()
    out = aug(v)
    assert out.shape == (4, 3, 5, 24, 32) and out.dtype == torch.float32
    expected = (v[0, 2, 3, 4, 1] / 255.0 - 0.456) / 0.224
    assert torch.isclose(out[0, 1, 2, 3, 4], expected)


def test_one_draw_per_clip_shared_by_all_frames():
    # Identical frames in, so identical frames out iff every frame got the same crop and flip.
    frame = _clips(b=6, t=1)
    v = frame.expand(6, 7, 24, 32, 3).contiguous()
    torch.manual_seed(1)
    out = make("augment", "default", scale=(0.3, 0.6)).train()(v)
    assert torch.allclose(out, out[:, :, :1].expand_as(out), atol=1e-5)
    assert not torch.allclose(out[0], out[1])  # clips differ from each other


def test_flip_only_mirrors_the_frame():
    v = _clips(b=1)
    aug = make("augment", "default", scale=(1.0, 1.0), ratio=(1.0, 1.0), flip=1.0).train()
    assert torch.allclose(aug(v), make("augment", "default").eval()(v).flip(-1), atol=1e-4)


def test_same_seed_same_draws():
    v = _clips()
    aug = make("augment", "default", scale=(0.5, 1.0)).train()
    torch.manual_seed(3)
    a = aug(v)
    torch.manual_seed(3)
    assert torch.equal(a, aug(v))
