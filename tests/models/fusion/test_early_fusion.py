"""Concat + FC and MCBP: feature combination, heads, and the MCBP pipeline."""

import torch
from torch.nn import functional as F

from cfnsr.models.layers.count_sketch import circular_convolution


def test_concat_fc_is_mlp_of_concatenation(build, tiny_inputs):
    model = build("concat_fc").eval()
    v, a = model.video.features(tiny_inputs[0]), model.audio.features(tiny_inputs[1])
    torch.testing.assert_close(model(*tiny_inputs).logits, model.mlp(torch.cat([v, a], dim=1)))
    assert model.mlp[0].in_features == model.video.feature_dim + model.audio.feature_dim


def test_kept_heads_are_frozen_diagnostics(build, tiny_inputs):
    model = build("concat_fc").eval()
    assert not any(p.requires_grad for p in model.video.head.parameters())
    out = model(*tiny_inputs)
    torch.testing.assert_close(out.streams["audio"], model.audio(tiny_inputs[1]))


def test_heads_can_be_dropped(build):
    model = build("concat_fc", backbone="paper", meta=True, keep_unimodal_heads=False)
    assert model.video.head is None and model.audio.head is None
    assert sum(p.numel() for p in model.parameters()) == 26_838_952  # docs/paper-facts.md#concat--fc, the 26.84M variant


def test_mcbp_pipeline(build, tiny_inputs):
    model = build("mcbp").eval()
    v, a = model.video.features(tiny_inputs[0]), model.audio.features(tiny_inputs[1])
    z = circular_convolution(model.sketch_video(v), model.sketch_audio(a))
    z = F.normalize(torch.sign(z) * z.abs().sqrt(), dim=1)
    torch.testing.assert_close(model(*tiny_inputs).logits, model.classifier(z), rtol=1e-4, atol=1e-5)
    assert model.sketch_video.out_dim == 16000


def test_mcbp_sketches_are_not_parameters(build):
    model = build("mcbp", sketch_dim=64)
    assert sum(p.numel() for p in model.parameters()) == (
        sum(p.numel() for p in build("averaging").parameters()) + 64 * 8 + 8)
    assert {"sketch_video.index", "sketch_video.sign"} <= set(model.state_dict())


def test_mcbp_signed_sqrt_has_finite_gradient_at_zero(build):
    model = build("mcbp", sketch_dim=64)
    v = torch.zeros(2, model.video.feature_dim, requires_grad=True)
    a = torch.randn(2, model.audio.feature_dim)
    model.fuse(v, a).sum().backward()
    assert torch.isfinite(v.grad).all()
