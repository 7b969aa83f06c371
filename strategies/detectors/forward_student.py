"""The hybrid's heterogeneous forward student (seed paper's ``zhengxiang_wide_resnet50_2``).

A truncated ResNet of Bottleneck blocks (``blocks`` = (2, 3, 6) in the seed) with CBAM channel
attention (Woo et al., ECCV 2018; ratio 16) after the 3x3 convolution of every block:
``x * sigmoid(MLP(avgpool(x)) + MLP(maxpool(x)))``, ``MLP = 1x1 conv C -> C/16 -> C`` without
bias. The attention is a registered submodule created once, trained and saved (the seed
re-created it with fresh random weights in every forward pass, so it never trained).

Stem: 7x7 stride-2 convolution + BN + ReLU + 3x3 stride-2 max-pool (stride 4); stages 1-3 with
strides 1, 2, 2 reach strides 4, 8, 16, the teacher's. Stage l has ``planes_l`` planes, inner
width ``planes_l * width_per_group / 64`` and ``4 * planes_l`` output channels. ``planes=None``
("auto") takes ``planes_l = C_l / 4`` from the teacher's channel counts ``C_l``: for the
Wide-ResNet-50-2 teacher that is the seed's student (64, 128, 256 planes, width 128). A 1x1
convolution projects each stage to ``C_l`` where the counts differ or where the teacher's
features are signed (EfficientNet), which a ReLU output cannot match. The stem has
``stem_channels`` channels, ``None`` ("auto") = ``min(64, C_1)``: 64 (the seed's) for the
ResNet teachers, 24 for EfficientNet-Lite0, whose stem at 64 channels alone cost as much as the
rest of the student and broke the 1.6x training-cost budget against RD4AD.
"""

from __future__ import annotations

from torch import Tensor, nn

from strategies.detectors.rd4ad import init_weights


class ChannelAttention(nn.Module):
    """CBAM channel attention: ``x * sigmoid(MLP(avg(x)) + MLP(max(x)))``."""

    def __init__(self, channels: int, ratio: int = 16) -> None:
        super().__init__()
        hidden = max(4, channels // ratio)
        self.mlp = nn.Sequential(
            nn.Conv2d(channels, hidden, 1, bias=False),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, channels, 1, bias=False),
        )

    def forward(self, x: Tensor) -> Tensor:
        avg = self.mlp(x.mean(dim=(2, 3), keepdim=True))
        mx = self.mlp(x.amax(dim=(2, 3), keepdim=True))
        return x * (avg + mx).sigmoid()


class AttentionBottleneck(nn.Module):
    """ResNet bottleneck with channel attention after conv2 (seed: ``zhengxiang_resnet.py``)."""

    expansion = 4

    def __init__(self, cin: int, planes: int, width_per_group: int, stride: int = 1) -> None:
        super().__init__()
        inner = max(4, int(planes * width_per_group / 64))
        cout = planes * self.expansion
        self.conv1 = nn.Conv2d(cin, inner, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(inner)
        self.conv2 = nn.Conv2d(inner, inner, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(inner)
        self.attention = ChannelAttention(inner)
        self.conv3 = nn.Conv2d(inner, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(cout))

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.attention(out)
        out = self.bn3(self.conv3(out))
        identity = x if self.shortcut is None else self.shortcut(x)
        return self.relu(out + identity)


class ForwardStudent(nn.Module):
    """Heterogeneous forward student producing teacher-shaped features (3 levels)."""

    def __init__(self, teacher_channels: tuple[int, int, int],
                 blocks: tuple[int, int, int] = (2, 3, 6), width_per_group: int = 128,
                 planes: tuple[int, int, int] | None = None, stem_channels: int | None = None,
                 teacher_nonnegative: bool = True) -> None:
        super().__init__()
        if planes is None:
            planes = tuple(max(4, c // AttentionBottleneck.expansion) for c in teacher_channels)
        self.planes = tuple(int(p) for p in planes)
        if stem_channels is None:
            stem_channels = min(64, int(teacher_channels[0]))
        self.stem = nn.Sequential(
            nn.Conv2d(3, stem_channels, 7, stride=2, padding=3, bias=False),
            nn.BatchNorm2d(stem_channels),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2, padding=1),
        )
        stages, projections = [], []
        cin = stem_channels
        for level, (n_blocks, p) in enumerate(zip(blocks, self.planes, strict=True)):
            stride = 1 if level == 0 else 2
            layers = [AttentionBottleneck(cin, p, width_per_group, stride)]
            cin = p * AttentionBottleneck.expansion
            layers += [AttentionBottleneck(cin, p, width_per_group) for _ in range(n_blocks - 1)]
            stages.append(nn.Sequential(*layers))
            needs_projection = cin != teacher_channels[level] or not teacher_nonnegative
            projections.append(nn.Conv2d(cin, teacher_channels[level], 1) if needs_projection
                               else nn.Identity())
        self.stages = nn.ModuleList(stages)
        self.projections = nn.ModuleList(projections)
        init_weights(self)

    def forward(self, images: Tensor) -> list[Tensor]:
        x = self.stem(images)
        outputs = []
        for stage, projection in zip(self.stages, self.projections, strict=True):
            x = stage(x)
            outputs.append(projection(x))
        return outputs
