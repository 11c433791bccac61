"""Saliency models whose last hidden features are factorised into bases.

METHOD.md sections 1-2. Every model is a `SaliencyModel`: a `features` module
maps an image batch to the features `F` (B x C x h x w) that feed the saliency
layer, and one of three heads turns `F` into a saliency map:

- ``plain`` (baseline): ``sigmoid(conv3x3_{C->1}(F))``;
- ``factorised`` (phase one): probability maps ``P = sigmoid(W . F)`` over N
  bases, reconstructed features ``F~ = sum_n P[n] W[n]``, then the same
  ``conv3x3_{C->1}`` on ``F~``;
- ``reformulated`` (phase two): ``sigmoid(conv3x3_{N->1}(P) + b)`` where the
  conv has no bias and the scalar offset ``b`` is 0 (the paper) unless phase
  two is asked to learn it; the per-basis saliency weight is the kernel summed
  over its 3 x 3 window.

The saliency map is upsampled bilinearly to the input size. Submodule names are
stable (``features.backbone.layer1`` ... , ``bases``, ``readout``,
``reformulated``) so that hooks, checkpoints and dissection can rely on them.

Models are built by name through `get_model`, in torchvision's manner.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import torch
import torch.nn.functional as nnf
from torch import Tensor, nn
from torchvision.models.resnet import Bottleneck

HEADS = ("plain", "factorised", "reformulated")


class BasicBlock(nn.Module):
    """ResNet basic block (two 3x3 convs) that, unlike torchvision's, supports dilation."""

    expansion = 1

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        groups: int = 1,
        base_width: int = 64,
        dilation: int = 1,
        norm_layer: Callable[[int], nn.Module] | None = None,
    ) -> None:
        super().__init__()
        norm_layer = norm_layer or nn.BatchNorm2d
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, dilation, dilation, bias=False)
        self.bn1 = norm_layer(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, dilation, dilation, bias=False)
        self.bn2 = norm_layer(planes)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


BLOCKS: dict[str, type[nn.Module]] = {"basic": BasicBlock, "bottleneck": Bottleneck}


class ResNetBackbone(nn.Module):
    """A ResNet trunk with configurable depth and width, optionally dilated to stride 8.

    With ``block="bottleneck"``, ``layers=(3, 4, 6, 3)``, ``widths=(64, 128, 256, 512)``
    and ``stem_width=64`` this is torchvision's ResNet-50 (same parameter names,
    so ImageNet weights load); with ``dilated=True`` the stages after ``layer2``
    keep stride 1 and grow their dilation instead (x2 per stage), as in DINet.
    """

    def __init__(
        self,
        *,
        block: str = "bottleneck",
        layers: Sequence[int] = (3, 4, 6, 3),
        widths: Sequence[int] = (64, 128, 256, 512),
        stem_width: int = 64,
        dilated: bool = True,
    ) -> None:
        super().__init__()
        if block not in BLOCKS:
            raise ValueError(f"unknown block {block!r}; choose one of {sorted(BLOCKS)}")
        if not 1 <= len(layers) <= 4 or len(layers) != len(widths):
            raise ValueError(
                f"layers {list(layers)} and widths {list(widths)} must have the same length, 1 to 4"
            )
        self.block = BLOCKS[block]
        self.inplanes = stem_width
        self.dilation = 1
        self.conv1 = nn.Conv2d(3, stem_width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(stem_width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        for index, (blocks, width) in enumerate(zip(layers, widths, strict=True)):
            stride = 1 if index == 0 else 2
            dilate = dilated and index >= 2
            self.add_module(f"layer{index + 1}", self._make_layer(width, blocks, stride, dilate))
        self.num_layers = len(layers)
        self.out_channels = widths[-1] * self.block.expansion
        self.stride = 4 * 2 ** min(len(layers) - 1, 1 if dilated else 3)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def _make_layer(self, planes: int, blocks: int, stride: int, dilate: bool) -> nn.Sequential:
        previous_dilation = self.dilation
        if dilate:
            self.dilation *= stride
            stride = 1
        expansion = self.block.expansion
        downsample = None
        if stride != 1 or self.inplanes != planes * expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * expansion, 1, stride, bias=False),
                nn.BatchNorm2d(planes * expansion),
            )
        modules = [
            self.block(self.inplanes, planes, stride, downsample, dilation=previous_dilation)
        ]
        self.inplanes = planes * expansion
        modules += [
            self.block(self.inplanes, planes, dilation=self.dilation) for _ in range(1, blocks)
        ]
        return nn.Sequential(*modules)

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for index in range(1, self.num_layers + 1):
            x = getattr(self, f"layer{index}")(x)
        return x


class DINetFeatures(nn.Module):
    """DINet's body: dilated ResNet, inception-like dilated encoder, conv decoder.

    The encoder is a 1x1 conv to E channels and three parallel 3x3 convs with the
    given dilations; its output concatenates their sum and each of the three
    (4E channels). The decoder, conv3x3 4E->E + ReLU, gives `F` with C = E.
    """

    def __init__(
        self,
        backbone: ResNetBackbone,
        *,
        channels: int = 512,
        dilations: Sequence[int] = (4, 8, 16),
    ) -> None:
        super().__init__()
        if len(dilations) != 3:
            raise ValueError(f"DINet's encoder takes three dilations, got {list(dilations)}")
        self.backbone = backbone
        self.reduce = nn.Sequential(
            nn.Conv2d(backbone.out_channels, channels, 1), nn.ReLU(inplace=True)
        )
        self.branches = nn.ModuleList(
            nn.Sequential(nn.Conv2d(channels, channels, 3, 1, d, d), nn.ReLU(inplace=True))
            for d in dilations
        )
        self.decoder = nn.Sequential(
            nn.Conv2d(4 * channels, channels, 3, 1, 1), nn.ReLU(inplace=True)
        )
        self.out_channels = channels
        self.stride = backbone.stride

    def forward(self, x: Tensor) -> Tensor:
        x = self.reduce(self.backbone(x))
        branches = [branch(x) for branch in self.branches]
        return self.decoder(torch.cat([sum(branches), *branches], dim=1))


class SaliencyModel(nn.Module):
    """Features, N bases and the three saliency heads of METHOD.md 1-2.

    ``forward`` returns a dict with ``saliency`` (B x 1 x H x W, in [0, 1], at the
    input size) and, unless the head is ``plain``, ``prob`` (B x N x h x w).
    """

    def __init__(self, features: nn.Module, *, n_bases: int = 512, head: str = "factorised"):
        super().__init__()
        channels = features.out_channels
        self.features = features
        self.bases = nn.Linear(channels, n_bases, bias=False)
        self.readout = nn.Conv2d(channels, 1, 3, 1, 1)
        self.reformulated = nn.Conv2d(n_bases, 1, 3, 1, 1, bias=False)
        self.offset = nn.Parameter(torch.zeros(1))
        self.n_bases = n_bases
        self.head = ""
        self.set_head(head)

    def set_head(self, head: str) -> None:
        if head not in HEADS:
            raise ValueError(f"unknown head {head!r}; choose one of {HEADS}")
        self.head = head

    def probability_maps(self, features: Tensor) -> Tensor:
        """``P = sigmoid(W . F)`` at every grid cell: B x N x h x w."""
        return torch.sigmoid(torch.einsum("nc,bchw->bnhw", self.bases.weight, features))

    def reconstruct(self, prob: Tensor) -> Tensor:
        """``F~ = sum_n P[n] W[n]``: B x C x h x w."""
        return torch.einsum("bnhw,nc->bchw", prob, self.bases.weight)

    def saliency_from_prob(self, prob: Tensor, size: tuple[int, int]) -> Tensor:
        """Phase-two saliency from probability maps (used on cached maps too)."""
        return _upsample(torch.sigmoid(self.reformulated(prob) + self.offset), size)

    def forward(self, image: Tensor) -> dict[str, Tensor]:
        size = (image.shape[-2], image.shape[-1])
        features = self.features(image)
        if self.head == "plain":
            return {"saliency": _upsample(torch.sigmoid(self.readout(features)), size)}
        prob = self.probability_maps(features)
        if self.head == "factorised":
            saliency = _upsample(torch.sigmoid(self.readout(self.reconstruct(prob))), size)
        else:
            saliency = self.saliency_from_prob(prob, size)
        return {"saliency": saliency, "prob": prob}

    def basis_weights(self) -> Tensor:
        """Per-basis saliency weight ``w[n]``: the phase-two kernel summed over 3 x 3."""
        return self.reformulated.weight.detach().sum(dim=(0, 2, 3))

    def freeze_for_phase2(self, offset: bool = False) -> list[nn.Parameter]:
        """Freeze everything up to and including the bases; return the trainable params.

        Only the reformulated conv trains, and the scalar offset when ``offset``
        (it then absorbs the global level that the bias-free conv would
        otherwise spread over the basis weights).
        """
        for parameter in self.parameters():
            parameter.requires_grad_(False)
        trainable = [self.reformulated.weight] + ([self.offset] if offset else [])
        for parameter in trainable:
            parameter.requires_grad_(True)
        return trainable


def _upsample(x: Tensor, size: tuple[int, int]) -> Tensor:
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return nnf.interpolate(x, size=size, mode="bilinear", align_corners=False)


def load_backbone_weights(backbone: nn.Module, weights: str | None) -> None:
    """Load ImageNet weights from a local file; ``none`` keeps the random init.

    Nothing is downloaded: a missing file is an error naming the path.
    """
    if weights in (None, "", "none"):
        return
    path = Path(weights).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"backbone weights {path}: file not found (use 'none' for random init)"
        )
    state = torch.load(path, map_location="cpu", weights_only=True)
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    missing, unexpected = backbone.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(
            f"backbone weights {path} do not fit the configured backbone: "
            f"{len(missing)} missing keys (e.g. {missing[:3]}), "
            f"{len(unexpected)} unexpected (e.g. {unexpected[:3]})"
        )


def dinet(
    *,
    backbone: dict | None = None,
    encoder_channels: int = 512,
    encoder_dilations: Sequence[int] = (4, 8, 16),
    n_bases: int = 512,
    head: str = "factorised",
    weights: str | None = "none",
) -> SaliencyModel:
    """DINet (dilated ResNet-50 + inception-like encoder) with a factorised head.

    The defaults are the paper's model; ``backbone`` (keyword arguments of
    `ResNetBackbone`) and ``encoder_channels`` make it CPU-sized.
    """
    trunk = ResNetBackbone(**(backbone or {}))
    load_backbone_weights(trunk, weights)
    features = DINetFeatures(trunk, channels=encoder_channels, dilations=encoder_dilations)
    return SaliencyModel(features, n_bases=n_bases, head=head)


MODELS: dict[str, Callable[..., SaliencyModel]] = {"dinet": dinet}


def get_model(name: str, **cfg) -> SaliencyModel:
    """Build a registered architecture by name with keyword options."""
    if name not in MODELS:
        raise ValueError(f"unknown architecture {name!r}; choose one of {sorted(MODELS)}")
    return MODELS[name](**cfg)
