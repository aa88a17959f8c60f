"""Models: a small ResNet for the digits data, and torchvision's ResNet-18 (the challenge's model).

Both are instances of one *grouped* ResNet (:class:`GroupedResNet`, torchvision's ``BasicBlock``
layout). Built with ``groups=G`` it is G independent copies of the network in one module: every
convolution is grouped by model (``groups=G``), every batch-norm channel belongs to exactly one model
and the classifier is a :class:`GroupedLinear`, so G models train at once with per-model batch
statistics. The fused input is ``[B, G * C, H, W]`` (model g reads channels ``g*C:(g+1)*C``) and the
output ``[B, G * classes]``. With ``groups=1`` it is the ordinary network, with the parameter names of
torchvision's ResNet.

* :class:`SmallResNet` (digits, 1x8x8): a 3x3 stem, three stages of one bare ``BasicBlock`` each. Its
  top-level children carry torchvision's names (``conv1, bn1, relu, maxpool, layer1..layer3, avgpool,
  fc``), so code that selects parts of a ``resnet18`` by those names runs on it -- SRFL's "train only
  ``layer1`` and ``layer2``", ALIF's mixers on their convolutions. It is not a ``resnet18``: there is no
  ``layer4``, and each stage is one block with no ``Sequential`` level (``layer1.conv1``, not
  ``layer1.0.conv1``), so code that reaches ``layer4``, indexes a stage (``net.layer1[0]``) or counts
  on two blocks per stage fails or does something else -- SRFL's two stages here are two blocks, on
  resnet18 four.
* :func:`grouped_resnet18`: torchvision's ``resnet18`` (7x7 stride-2 stem, 3x3 stride-2 max-pool, four
  stages of two blocks); its ``groups=1`` state dict has exactly torchvision's keys and shapes.

:func:`fused_model` stacks G ordinary models (``SmallResNet`` or torchvision's ``resnet18`` -- any
torchvision ``ResNet`` built from ``BasicBlock``) into one grouped module; :func:`split_fused_state` cuts
a fused state dict into G ordinary ones (they load into ``torchvision.models.resnet18(num_classes=10)``
unchanged) and :func:`fuse_states` does the reverse.

Why grouped convolutions and not ``torch.func`` stacking (``vmap`` over ``functional_call``): vmap's
batching rule for a convolution with per-model weights *is* a grouped convolution, so the arithmetic is
the same, while vmap cannot update batch-norm running statistics in place (functorch's documented
limitation), which the oracles need. Measured on CPU (``benchmarks/bench_cifar.py``), see RESULTS.md.
"""

from __future__ import annotations

import torch
from torch import nn

DIGITS_WIDTHS = (8, 16, 32)
RESNET18_WIDTHS = (64, 128, 256, 512)
RESNET18_BLOCKS = (2, 2, 2, 2)


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


class GroupedResNet(nn.Module):
    """G independent BasicBlock ResNets as one module (``groups=1``: one ordinary ResNet).

    ``widths``/``blocks``: channels and block count of each stage (stage 1 keeps the resolution, every
    later stage halves it); ``stem_kernel``/``stem_stride``: the first convolution (padding
    ``kernel // 2``); ``pool``: the stem's max-pool ``(kernel, stride, padding)``. Initialisation as
    torchvision's (Kaiming-normal fan-out convolutions, batch norm 1/0, default linear).
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 3, widths=RESNET18_WIDTHS,
                 blocks=RESNET18_BLOCKS, stem_kernel: int = 7, stem_stride: int = 2, pool=(3, 2, 1),
                 groups: int = 1):
        super().__init__()
        if groups < 1 or len(widths) != len(blocks) or min(blocks) < 1:
            raise ValueError(f"GroupedResNet needs groups >= 1 and one block count >= 1 per width; got "
                             f"groups={groups}, widths={widths}, blocks={blocks}")
        g = groups
        self.groups, self.num_classes, self.in_channels = groups, num_classes, in_channels
        self.widths, self.blocks = tuple(widths), tuple(blocks)
        self.stem_kernel, self.stem_stride, self.pool = stem_kernel, stem_stride, tuple(pool)
        self.conv1 = nn.Conv2d(g * in_channels, g * widths[0], stem_kernel, stem_stride, stem_kernel // 2,
                               bias=False, groups=g)
        self.bn1 = nn.BatchNorm2d(g * widths[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(*pool)
        self.stage_names = []
        inplanes = widths[0]
        for number, (width, count) in enumerate(zip(widths, blocks), start=1):
            setattr(self, f"layer{number}", self._stage(inplanes, width, 1 if number == 1 else 2, count, g))
            self.stage_names.append(f"layer{number}")
            inplanes = width
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(widths[-1], num_classes) if g == 1 else GroupedLinear(widths[-1], num_classes, g)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    @staticmethod
    def _stage(inplanes: int, planes: int, stride: int, count: int, groups: int) -> nn.Module:
        """torchvision's stage: ``count`` blocks in an ``nn.Sequential`` (``layerN.0``, ``layerN.1``, ...)."""
        return nn.Sequential(*[BasicBlock(inplanes if i == 0 else planes, planes, stride if i == 0 else 1, groups)
                               for i in range(count)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for name in self.stage_names:
            x = getattr(self, name)(x)
        return self.fc(torch.flatten(self.avgpool(x), 1))

    def arch(self) -> dict:
        """The constructor's arguments except ``groups``: ``type(self)(**arch, groups=G)`` is its fused twin."""
        return {"num_classes": self.num_classes, "in_channels": self.in_channels, "widths": self.widths,
                "blocks": self.blocks, "stem_kernel": self.stem_kernel, "stem_stride": self.stem_stride,
                "pool": self.pool}

    def config(self) -> dict:
        return {"arch": "grouped_resnet", **{k: list(v) if isinstance(v, tuple) else v
                                             for k, v in self.arch().items()}}


class SmallResNet(GroupedResNet):
    """A three-stage ResNet for small images (digits: 1x8x8), one bare BasicBlock per stage.

    ``widths`` are the channel counts of ``layer1..layer3``; stages 2 and 3 halve the resolution.
    About 52,000 multiply-adds (0.1 MFLOPs) per 8x8 image with the default widths, 19,810 parameters.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1, widths=DIGITS_WIDTHS, groups: int = 1):
        super().__init__(num_classes, in_channels, widths, (1,) * len(widths), stem_kernel=3, stem_stride=1,
                         pool=(2, 2, 0), groups=groups)

    @staticmethod
    def _stage(inplanes: int, planes: int, stride: int, count: int, groups: int) -> nn.Module:
        return BasicBlock(inplanes, planes, stride, groups)   # ``layerN.conv1``: no Sequential level

    def arch(self) -> dict:
        return {"num_classes": self.num_classes, "in_channels": self.in_channels, "widths": self.widths}

    def config(self) -> dict:
        return {"arch": "small_resnet", "num_classes": self.num_classes,
                "in_channels": self.in_channels, "widths": list(self.widths)}


def grouped_resnet18(num_classes: int = 10, groups: int = 1, in_channels: int = 3) -> GroupedResNet:
    """G torchvision ``resnet18(num_classes=...)`` networks as one grouped module."""
    return GroupedResNet(num_classes, in_channels, RESNET18_WIDTHS, RESNET18_BLOCKS, groups=groups)


def fusable_arch(model: nn.Module) -> tuple[type, dict] | None:
    """``(class, arguments)`` of the grouped twin of an ordinary model, or None when it cannot be fused.

    Fusable: a :class:`GroupedResNet` (``SmallResNet`` included) with ``groups == 1``, and torchvision's
    ``ResNet`` of plain ``BasicBlock`` stages (``resnet18``, ``resnet34``) with its standard stem --
    exact classes only, since a subclass may change ``forward``.
    """
    if isinstance(model, GroupedResNet):
        return (type(model), model.arch()) if model.groups == 1 else None
    import torchvision.models.resnet as tv

    if type(model) is not tv.ResNet or not isinstance(model.maxpool, nn.MaxPool2d):
        return None
    stages = [model.layer1, model.layer2, model.layer3, model.layer4]
    if not all(type(block) is tv.BasicBlock and block.conv1.groups == 1 and block.conv1.dilation == (1, 1)
               for stage in stages for block in stage):
        return None
    pool = model.maxpool
    if (model.conv1.kernel_size != (7, 7) or model.conv1.stride != (2, 2) or model.conv1.padding != (3, 3)
            or (pool.kernel_size, pool.stride, pool.padding, pool.dilation) != (3, 2, 1, 1) or pool.ceil_mode):
        return None
    arch = {"num_classes": model.fc.out_features, "in_channels": model.conv1.in_channels,
            "widths": tuple(stage[0].conv1.out_channels for stage in stages),
            "blocks": tuple(len(stage) for stage in stages), "stem_kernel": 7, "stem_stride": 2, "pool": (3, 2, 1)}
    return GroupedResNet, arch


def fused_model(models: list[nn.Module]) -> GroupedResNet:
    """One grouped module holding copies of ``models`` (same fusable architecture), on their device.

    Built without initialising (the weights come from ``models``), so fusing 64 ResNet-18s is a copy.
    """
    archs = [fusable_arch(m) for m in models]
    if not models or archs[0] is None or any(a != archs[0] for a in archs):
        raise ValueError("fused_model needs one or more models of one fusable architecture (SmallResNet, or "
                         "torchvision's BasicBlock ResNet such as resnet18); check with fusable_arch(model)")
    cls, arch = archs[0]
    with torch.device("meta"):
        fused = cls(**arch, groups=len(models))
    fused.load_state_dict(fuse_states([m.state_dict() for m in models]), assign=True)
    return fused.train(models[0].training)


def split_fused_state(state: dict, groups: int) -> list[dict]:
    """Cut the state dict of a fused model (``groups=G``) into G ordinary state dicts."""
    models = [dict() for _ in range(groups)]
    for name, tensor in state.items():
        parts = [tensor] * groups if tensor.ndim == 0 else tensor.chunk(groups, dim=0)
        for model, part in zip(models, parts):
            model[name] = part.clone(memory_format=torch.contiguous_format)
    return models


def fuse_states(states: list[dict]) -> dict:
    """Stack G ordinary state dicts into the state dict of the fused model (``groups=G``)."""
    return {name: states[0][name].clone() if states[0][name].ndim == 0
            else torch.cat([state[name] for state in states]) for name in states[0]}


@torch.no_grad()
def grouped_logits(model: nn.Module, inputs: torch.Tensor, groups: int,
                   images_per_pass: int = 16384) -> torch.Tensor:
    """Float32 logits ``[n, G, classes]`` of a fused model (eval mode as set by the caller) on the same
    ``inputs`` ``[n, C, H, W]`` for every model, on the model's device, in passes of about
    ``images_per_pass`` model-images (the input is repeated per model inside each pass only)."""
    device = next(model.parameters()).device
    channels_last = next(model.parameters()).ndim == 4 and model.conv1.weight.is_contiguous(
        memory_format=torch.channels_last)
    batch = max(1, images_per_pass // groups)
    out = []
    for start in range(0, len(inputs), batch):
        x = inputs[start:start + batch].to(device).repeat(1, groups, 1, 1)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        out.append(model(x).float().view(len(x), groups, -1))
    return torch.cat(out)


def resnet18(num_classes: int = 10) -> nn.Module:
    """The challenge's model: ``torchvision.models.resnet18(weights=None, num_classes=...)``."""
    import torchvision

    return torchvision.models.resnet18(weights=None, num_classes=num_classes)
