"""CFN-SR (Fu et al. 2021): self-attended audio steers a spatial attention over the video features."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from cfnsr.models.backbones.base import Backbone
from cfnsr.models.fusion.base import FusionModel, FusionOutput
from cfnsr.models.layers.cross_modal_attention import CrossModalAttention
from cfnsr.models.layers.transformer import TransformerEncoder


class CFNSR(FusionModel):
    """The cross-modal fusion network as run by the reference code (docs/paper-facts.md#cfn-sr-as-run), bugs fixed.

        audio stages -> y (B, d, T) -> Transformer over T -> last step (B, d) ─┐
        video stages -> x (B, C, S, H, W) ──────────────> CrossModalAttention ─┴─> x' -> avg pool (B, C)
        [avg pool x' ; audio.pool(y) (B, D_a), the un-attended CNN features] -> fc -> logits (B, K)

    d = k = the audio backbone's last channels (64) and C its video counterpart (2048). The unimodal
    heads are dropped: 26,301,417 parameters with the paper backbones.

    Args:
        cross_modal: False skips the cross-modal block and the Transformer (plain concatenation,
            the reference's ablation 1: 25,916,072 parameters).
        self_attention: False replaces the Transformer by the mean of y over time.
        residual: False drops the residual, x' = x * map (ablation 2).
        batch_sum_attention: see CrossModalAttention (reference bug; off in conf/fusion/cfnsr.yaml).
        num_heads, num_layers, ffn_multiplier, attn_dropout, relu_dropout, res_dropout, embed_dropout,
        causal: the Transformer's settings (FFN width = ffn_multiplier * d).
    """

    def __init__(self, video: Backbone, audio: Backbone, num_classes: int, *, cross_modal: bool,
                 self_attention: bool, residual: bool, batch_sum_attention: bool, num_heads: int, num_layers: int,
                 ffn_multiplier: int, attn_dropout: float, relu_dropout: float, res_dropout: float,
                 embed_dropout: float, causal: bool) -> None:
        super().__init__(video, audio, num_classes)
        video.remove_head()
        audio.remove_head()
        d = audio.stage_channels[-1]
        self.audio_attention = None
        self.cross_modal_block = None
        if cross_modal:
            if self_attention:
                self.audio_attention = TransformerEncoder(d, num_heads, num_layers, ffn_multiplier * d,
                                                          attn_dropout, relu_dropout, res_dropout,
                                                          embed_dropout, causal)
            self.cross_modal_block = CrossModalAttention(video.stage_channels[-1], d, k=d, residual=residual,
                                                         batch_sum_attention=batch_sum_attention)
        self.fc = nn.Linear(video.feature_dim + audio.feature_dim, num_classes)

    def forward(self, video: Tensor, audio: Tensor) -> FusionOutput:
        """video: (B, 3, T, H, W), audio: (B, n_mfcc, L) -> logits (B, K)."""
        x = self.video.forward_stages(video, self.video.stage_names)
        y = self.audio.forward_stages(audio, self.audio.stage_names)
        if self.cross_modal_block is not None:
            x = self.cross_modal_block(x, self.summarise_audio(y))
        return FusionOutput(self.fc(torch.cat([self.video.pool(x), self.audio.pool(y)], dim=1)))

    def summarise_audio(self, y: Tensor) -> Tensor:
        """y: (B, d, T) -> (B, d)."""
        sequence = y.transpose(1, 2)
        if self.audio_attention is None:
            return sequence.mean(dim=1)
        # With the causal mask only the last step has attended to the whole sequence.
        return self.audio_attention(sequence)[:, -1]
