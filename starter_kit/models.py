"""Models: a small ResNet for the digits data, and torchvision's ResNet-18 (the challenge's model).

:class:`SmallResNet` is named like torchvision's ResNet (``conv1``, ``bn1``, ``layer1``, ``layer2``,
``layer3``, ``avgpool``, ``fc``), so code written for ``torchvision.models.resnet18(num_classes=10)``
-- such as SRFL's rule "train only the first two backbone stages" -- runs on it unchanged.

It can also be built *fused*: ``SmallResNet(..., groups=G)`` is G independent copies of the network
in one module, every convolution grouped by model and every batch-norm channel belonging to exactly
one model, so G models train at once with per-model batch statistics. The fused input is
``[B, G * C, H, W]`` (model g reads channels ``g*C:(g+1)*C``) and the output ``[B, G * classes]``.
:func:`split_fused_state` cuts a fused state dict into G ordinary ones and :func:`fuse_states`
does the reverse; the ordinary model is simply ``groups=1``.
"""

from __future__ import annotations

import torch
from torch import nn

DIGITS_WIDTHS = (8, 16, 32)


class GroupedLinear(nn.Module):
    """G independent linear layers: input ``[B, G * in]``, output ``[B, G * out]``."""

    def __init__(self, in_features: int, out_features: int, groups: int):
        super().__init__()
        self.in_features, self.out_features, self.groups = in_features, out_features, groups
        reference = [nn.Linear(in_features, out_features) for _ in range(groups)]
        self.weight = nn.Parameter(torch.cat([layer.weight.data for layer in reference]))
        self.bias = nn.Parameter(torch.cat([layer.bias.data for layer in reference]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g, i, o = self.groups, self.in_features, self.out_features
        out = torch.einsum("bgi,goi->bgo", x.view(-1, g, i), self.weight.view(g, o, i))
        return (out + self.bias.view(g, o)).reshape(-1, g * o)


class BasicBlock(nn.Module):
    """torchvision's BasicBlock (two 3x3 convolutions and a shortcut), with a model-groups option."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1, groups: int = 1):
        super().__init__()
        g = groups
        self.conv1 = nn.Conv2d(g * inplanes, g * planes, 3, stride, 1, bias=False, groups=g)
        self.bn1 = nn.BatchNorm2d(g * planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(g * planes, g * planes, 3, 1, 1, bias=False, groups=g)
        self.bn2 = nn.BatchNorm2d(g * planes)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(g * inplanes, g * planes, 1, stride, bias=False, groups=g),
                nn.BatchNorm2d(g * planes),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class SmallResNet(nn.Module):
    """A three-stage ResNet for small images (digits: 1x8x8), one BasicBlock per stage.

    ``widths`` are the channel counts of ``layer1..layer3``; stages 2 and 3 halve the resolution.
    About 0.2 MFLOPs (multiply-adds) per 8x8 image with the default widths.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1, widths=DIGITS_WIDTHS, groups: int = 1):
        super().__init__()
        g, (w1, w2, w3) = groups, widths
        self.groups, self.num_classes, self.in_channels = groups, num_classes, in_channels
        self.widths = tuple(widths)
        self.conv1 = nn.Conv2d(g * in_channels, g * w1, 3, 1, 1, bias=False, groups=g)
        self.bn1 = nn.BatchNorm2d(g * w1)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(2)
        self.layer1 = BasicBlock(w1, w1, 1, g)
        self.layer2 = BasicBlock(w1, w2, 2, g)
        self.layer3 = BasicBlock(w2, w3, 2, g)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(w3, num_classes) if g == 1 else GroupedLinear(w3, num_classes, g)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))

    def config(self) -> dict:
        return {"arch": "small_resnet", "num_classes": self.num_classes,
                "in_channels": self.in_channels, "widths": list(self.widths)}


def split_fused_state(state: dict, groups: int) -> list[dict]:
    """Cut the state dict of a fused model (``groups=G``) into G ordinary state dicts."""
    models = [dict() for _ in range(groups)]
    for name, tensor in state.items():
        parts = [tensor] * groups if tensor.ndim == 0 else tensor.chunk(groups, dim=0)
        for model, part in zip(models, parts):
            model[name] = part.clone()
    return models


def fuse_states(states: list[dict]) -> dict:
    """Stack G ordinary state dicts into the state dict of the fused model (``groups=G``)."""
    return {name: states[0][name].clone() if states[0][name].ndim == 0
            else torch.cat([state[name] for state in states]) for name in states[0]}


def resnet18(num_classes: int = 10) -> nn.Module:
    """The challenge's model: ``torchvision.models.resnet18(weights=None, num_classes=...)``."""
    import torchvision

    return torchvision.models.resnet18(weights=None, num_classes=num_classes)
