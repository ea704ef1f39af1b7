"""CFN-SR: the forward pipeline, per-sample attention and the ablation switches."""

import pytest
import torch


def test_forward_pipeline(build, tiny_inputs):
    model = build("cfnsr").eval()
    video, audio = tiny_inputs
    x = model.video.forward_stages(video, model.video.stage_names)
    y = model.audio.forward_stages(audio, model.audio.stage_names)  # (B, d, T)
    summary = model.audio_attention(y.transpose(1, 2))[:, -1]
    x = model.cross_modal_block(x, summary)
    expected = model.fc(torch.cat([x.mean(dim=(2, 3, 4)), y.flatten(1)], dim=1))
    torch.testing.assert_close(model(video, audio).logits, expected)
    assert model.video.head is None and model.audio.head is None
    assert model(video, audio).streams is None


def test_a_sample_does_not_depend_on_its_batch(build, tiny_inputs):
    model = build("cfnsr").eval()
    video, audio = tiny_inputs
    torch.testing.assert_close(model(video, audio).logits[:1], model(video[:1], audio[:1]).logits)


def test_batch_sum_attention_reproduces_the_batch_dependence(build, tiny_inputs):
    model = build("cfnsr", batch_sum_attention=True).eval()
    video, audio = tiny_inputs
    assert not torch.allclose(model(video, audio).logits[:1], model(video[:1], audio[:1]).logits)


def test_paper_dimensions(build):
    model = build("cfnsr", backbone="paper", meta=True)
    assert model.audio_attention.dim == 64 and len(model.audio_attention.layers) == 5
    assert model.cross_modal_block.channel_affine.in_features == 2048
    assert model.fc.in_features == 3712


@pytest.mark.parametrize(("switch", "params"), [
    ({"cross_modal": False}, 25_916_072),  # reference ablation 1: plain concat
    ({"self_attention": False}, 26_051_369),  # no Transformer
    ({"residual": False}, 26_301_417),  # reference ablation 2: same parameters
])
def test_ablation_parameter_counts(build, switch, params):
    assert sum(p.numel() for p in build("cfnsr", backbone="paper", meta=True, **switch).parameters()) == params


def test_without_self_attention_the_summary_is_the_time_mean(build):
    model = build("cfnsr", self_attention=False)
    y = torch.randn(2, 16, 26)
    torch.testing.assert_close(model.summarise_audio(y), y.mean(dim=2))


def test_without_cross_modal_block_it_is_plain_concatenation(build, tiny_inputs):
    model = build("cfnsr", cross_modal=False).eval()
    assert model.cross_modal_block is None and model.audio_attention is None
    video, audio = tiny_inputs
    expected = model.fc(torch.cat([model.video.features(video), model.audio.features(audio)], dim=1))
    torch.testing.assert_close(model(video, audio).logits, expected)
