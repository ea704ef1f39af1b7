"""Averaging, Multiplication and Multiplicative: the combine rules and the losses."""

import math

import torch
from torch.nn import functional as F

from cfnsr.models.fusion.base import FusionOutput

STREAMS = {
    "video": torch.tensor([[2.0, 0.5, -1.0], [0.1, 0.2, 0.3]]),
    "audio": torch.tensor([[0.0, 1.0, 0.0], [-2.0, 3.0, 0.5]]),
}
TARGET = torch.tensor([0, 2])


def test_averaging_is_log_of_mean_probability(build):
    model = build("averaging", meta=True)
    expected = (STREAMS["video"].softmax(-1) + STREAMS["audio"].softmax(-1)) / 2
    torch.testing.assert_close(model.combine(STREAMS).exp(), expected)


def test_multiplication_is_log_of_probability_product(build):
    model = build("prob_product", meta=True)
    expected = STREAMS["video"].softmax(-1) * STREAMS["audio"].softmax(-1)
    torch.testing.assert_close(model.combine(STREAMS).exp(), expected)


def test_late_fusion_loss_is_sum_of_stream_losses(build):
    output = FusionOutput(torch.zeros(2, 3), STREAMS)
    expected = F.cross_entropy(STREAMS["video"], TARGET) + F.cross_entropy(STREAMS["audio"], TARGET)
    for name in ("averaging", "prob_product"):
        torch.testing.assert_close(build(name, meta=True).loss(output, TARGET), expected)


def test_forward_combines_the_heads(build, tiny_inputs):
    model = build("averaging").eval()
    out = model(*tiny_inputs)
    torch.testing.assert_close(out.streams["video"], model.video(tiny_inputs[0]))
    torch.testing.assert_close(out.logits, model.combine(out.streams))


def test_multiplicative_loss_matches_hand_formula(build):
    model = build("multiplicative_loss", meta=True)
    assert model.beta == 0.3
    loss = model.loss(FusionOutput(torch.zeros(2, 3), STREAMS), TARGET)

    def p(stream: str, i: int) -> float:
        """Softmax probability of the true class, in plain Python."""
        row = STREAMS[stream][i].tolist()
        return math.exp(row[TARGET[i]]) / sum(math.exp(v) for v in row)

    per_sample = [
        -(1 - p("audio", i)) ** 0.3 * math.log(p("video", i)) - (1 - p("video", i)) ** 0.3 * math.log(p("audio", i))
        for i in range(2)
    ]
    assert abs(loss.item() - sum(per_sample) / 2) < 1e-6


def test_multiplicative_weights_are_detached(build):
    model = build("multiplicative_loss", meta=True)
    video = STREAMS["video"].clone().requires_grad_()
    model.loss(FusionOutput(torch.zeros(2, 3), {"video": video, "audio": STREAMS["audio"]}), TARGET).backward()
    # With the weight held constant, d/dvideo = weight * d CE_video, the cross-entropy gradient rescaled.
    weight = (1 - STREAMS["audio"].softmax(-1)[torch.arange(2), TARGET]) ** 0.3
    ce_grad = (video.detach().softmax(-1) - F.one_hot(TARGET, 3)) / 2
    torch.testing.assert_close(video.grad, weight[:, None] * ce_grad)


def test_multiplicative_with_beta_zero_is_sum_of_cross_entropies(build):
    model = build("multiplicative_loss", meta=True, beta=0.0)
    output = FusionOutput(torch.zeros(2, 3), STREAMS)
    torch.testing.assert_close(model.loss(output, TARGET), build("averaging", meta=True).loss(output, TARGET))


def test_multiplicative_predicts_like_averaging(build, tiny_inputs):
    a = build("averaging", seed=3).eval()
    m = build("multiplicative_loss", seed=3).eval()
    torch.testing.assert_close(a(*tiny_inputs).logits, m(*tiny_inputs).logits)
