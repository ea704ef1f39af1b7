"""3D ResNeXt (Hara et al. 2018; Xie et al. 2017), the visual backbone of MSAF and CFN-SR.

Module names follow kenshohara/3D-ResNets-PyTorch (``conv1``, ``bn1``, ``layer1..4`` made of blocks with
``conv1/bn1/conv2/bn2/conv3/bn3/downsample.0/downsample.1``, ``fc``), so its released state dicts load
directly. ``conf/backbone/paper.yaml`` gives ResNeXt-50 (cardinality 32, shortcut B, expansion 2): 25,882,056
parameters with an 8-class head. Widths, depths and the stem are arguments (no defaults: the YAML holds the
values), so the same class gives the tiny CPU backbone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch
from torch import Tensor, nn

from cfnsr.models.backbones.base import Backbone


class ResNeXtBottleneck(nn.Module):
    """1x1x1 -> grouped 3x3x3 (carries the stride) -> 1x1x1 expanding to ``expansion * planes``, plus shortcut.

    The grouped conv is ``planes`` wide, which is kenshohara's ``cardinality * int(planes / 32)`` when
    cardinality is 32 and stays valid for the small widths of the tiny backbone.
    """

    expansion: ClassVar[int] = 2

    def __init__(self, in_channels: int, planes: int, cardinality: int, stride: int) -> None:
        super().__init__()
        out_channels = self.expansion * planes
        self.conv1 = nn.Conv3d(in_channels, planes, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm3d(planes)
        self.conv2 = nn.Conv3d(planes, planes, kernel_size=3, stride=stride, padding=1,
                               groups=cardinality, bias=False)
        self.bn2 = nn.BatchNorm3d(planes)
        self.conv3 = nn.Conv3d(planes, out_channels, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm3d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        # Shortcut type B: a projection only where the shape changes, identity elsewhere.
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv3d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm3d(out_channels),
            )

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, C_in, T, H, W) -> (B, 2 * planes, T / stride, H / stride, W / stride)."""
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + shortcut)


class ResNeXt3D(Backbone):
    """3D ResNeXt video backbone with stages ``stem, layer1..layer4``.

    Input (B, 3, T, H, W). At the paper size (B, 3, 30, 224, 224) the stage outputs are
    stem (B, 64, 15, 56, 56), layer1 (B, 256, 15, 56, 56), layer2 (B, 512, 8, 28, 28),
    layer3 (B, 1024, 4, 14, 14), layer4 (B, 2048, 2, 7, 7); ``pool`` gives (B, 2048).

    Args:
        num_classes: classes of the unimodal head ``fc``.
        layers: blocks per stage.
        cardinality: groups of the 3x3x3 convs.
        stem_channels: output channels of ``conv1``.
        base_planes: bottleneck width of layer1, doubled at each later stage (outputs are 2x planes).
        stem_kernel, stem_stride: shape of ``conv1`` (padding is kernel // 2).
        stem_relu: False reproduces the public fusion code, whose stem skips the ReLU (docs/paper-facts.md#missing-stem-relu).
    """

    stage_names: ClassVar[tuple[str, ...]] = ("stem", "layer1", "layer2", "layer3", "layer4")
    head_name: ClassVar[str] = "fc"

    def __init__(
        self,
        num_classes: int,
        *,
        layers: Sequence[int],
        cardinality: int,
        stem_channels: int,
        base_planes: int,
        stem_kernel: Sequence[int],
        stem_stride: Sequence[int],
        stem_relu: bool,
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv3d(3, stem_channels, kernel_size=tuple(stem_kernel), stride=tuple(stem_stride),
                               padding=tuple(k // 2 for k in stem_kernel), bias=False)
        self.bn1 = nn.BatchNorm3d(stem_channels)
        self.relu = nn.ReLU(inplace=True) if stem_relu else nn.Identity()
        self.maxpool = nn.MaxPool3d(kernel_size=3, stride=2, padding=1)

        self.stage_channels = [stem_channels]
        for i, num_blocks in enumerate(layers):
            planes = base_planes * 2**i
            stride = 1 if i == 0 else 2
            setattr(self, f"layer{i + 1}", self._make_layer(self.stage_channels[-1], planes, num_blocks,
                                                            cardinality, stride))
            self.stage_channels.append(ResNeXtBottleneck.expansion * planes)
        self.feature_dim = self.stage_channels[-1]
        self.fc = nn.Linear(self.feature_dim, num_classes)
        self._init_weights()

    @staticmethod
    def _make_layer(in_channels: int, planes: int, num_blocks: int, cardinality: int,
                    stride: int) -> nn.Sequential:
        out_channels = ResNeXtBottleneck.expansion * planes
        blocks = [ResNeXtBottleneck(in_channels, planes, cardinality, stride)]
        blocks += [ResNeXtBottleneck(out_channels, planes, cardinality, 1) for _ in range(num_blocks - 1)]
        return nn.Sequential(*blocks)

    def _init_weights(self) -> None:
        # As in the reference: kaiming fan_out for convs, identity BN, PyTorch default for fc.
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
            elif isinstance(m, nn.BatchNorm3d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward_stage(self, name: str, x: Tensor) -> Tensor:
        """Run the stage ``name``; see the class docstring for the shapes."""
        match name:
            case "stem":
                return self.maxpool(self.relu(self.bn1(self.conv1(x))))
            case "layer1" | "layer2" | "layer3" | "layer4":
                return getattr(self, name)(x)
            case _:
                raise KeyError(f"unknown stage {name!r}; expected one of {self.stage_names}")

    def pool(self, x: Tensor) -> Tensor:
        """(B, C, T, H, W) -> (B, C) by global average pooling.

        The reference uses a fixed AvgPool3d sized for 30x224x224 clips, which equals the global
        average there; the adaptive form also works for any other clip size.
        """
        return torch.flatten(nn.functional.adaptive_avg_pool3d(x, 1), 1)
