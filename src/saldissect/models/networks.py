"""Saliency models whose last hidden features are factorised into bases.

docs/method.md sections 1-2. Every model is a `SaliencyModel`: a `features` module
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

The saliency map is resized to the input size (nearest, as the reference code
does, or bilinear by option). Submodule names are stable
(``features.backbone.layer1`` ... , ``bases``, ``readout``, ``reformulated``)
so that hooks, checkpoints and dissection can rely on them.

Three bodies (``features``) are registered, each on a ResNet trunk that is
ResNet-50 by default and CPU-sized by config: ``dinet`` (dilated ResNet,
inception-like encoder, stride 8), ``salicon`` (the dilated ResNet at two
scales, stride 8) and ``transalnet`` (transformer encoders on three ResNet
scales, top-down decoder, stride 2). Models are built by name through
`get_model`, in torchvision's manner.

With their default options the three compute what the authors' reference code
computes (github.com/szzexpoi/saliency_analysis, whose checkpoints
`saldissect.models.reference` imports): its ResNet puts a block's stride on the 1x1
conv, max-pools with padding 0 and ``ceil_mode``, and dilates every block of a
dilated stage; its convolutions before the saliency layer carry no bias
(DINet) and all resampling is nearest. The project's own alternatives are
named options, each documented on its factory: ``trunk="torchvision"``,
``upsample="bilinear"``, ``readout_bias``, and for DINet ``conv_bias`` and
``baseline_conv``. The CPU-sized synthetic default (``dinet_small`` in
config/config.yaml) sets them to keep its results.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import torch
import torch.nn.functional as nnf
from torch import Tensor, nn

from saldissect.core.config import ConfigError
from saldissect.core.errors import MissingFileError
from saldissect.models.plugins import ModuleFeatures, TorchvisionFeatures, import_object

HEADS = ("plain", "factorised", "reformulated")
TRUNKS = ("reference", "torchvision")
UPSAMPLING = ("nearest", "bilinear")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _check_choice(name: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; choose one of {list(choices)}")


class _ResidualBlock(nn.Module):
    """What both ResNet blocks take (torchvision's block arguments, plus ``style``):
    a subclass builds its convs in `_layers`; ``downsample`` maps the input to
    the output's shape for the residual sum."""

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
        style: str = "reference",
    ) -> None:
        super().__init__()
        _check_choice("trunk", style, TRUNKS)
        norm = norm_layer or nn.BatchNorm2d
        self._layers(inplanes, planes, stride, groups, base_width, dilation, norm, style)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def _layers(self, inplanes, planes, stride, groups, base_width, dilation, norm, style):
        raise NotImplementedError


class BasicBlock(_ResidualBlock):
    """ResNet basic block (two 3x3 convs) that, unlike torchvision's, supports dilation.

    ``style="reference"`` (the reference code's dilation applied to basic
    blocks): only the second conv is dilated. ``style="torchvision"``: both are.
    """

    expansion = 1

    def _layers(self, inplanes, planes, stride, groups, base_width, dilation, norm, style):
        first = 1 if style == "reference" else dilation
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, first, first, bias=False)
        self.bn1 = norm(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, dilation, dilation, bias=False)
        self.bn2 = norm(planes)

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(_ResidualBlock):
    """ResNet bottleneck block (1x1, 3x3, 1x1 convs, x4 expansion), with torchvision's
    parameter names so its ImageNet weights load as they are. Written here rather
    than imported: importing torchvision costs every job about a second.

    ``style="reference"`` puts the block's stride on the first (1x1) conv, as the
    reference code's ResNet (and the original Caffe ResNet) does;
    ``style="torchvision"`` puts it on the 3x3 conv (ResNet v1.5). The
    parameters are the same, the computation is not."""

    expansion = 4

    def _layers(self, inplanes, planes, stride, groups, base_width, dilation, norm, style):
        width = int(planes * (base_width / 64.0)) * groups
        stride1, stride3 = (stride, 1) if style == "reference" else (1, stride)
        self.conv1 = nn.Conv2d(inplanes, width, 1, stride1, bias=False)
        self.bn1 = norm(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride3, dilation, dilation, groups, bias=False)
        self.bn2 = norm(width)
        self.conv3 = nn.Conv2d(width, planes * self.expansion, 1, bias=False)
        self.bn3 = norm(planes * self.expansion)

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


BLOCKS: dict[str, type[nn.Module]] = {"basic": BasicBlock, "bottleneck": Bottleneck}


class ResNetBackbone(nn.Module):
    """A ResNet trunk with configurable depth and width, optionally dilated to stride 8.

    With ``block="bottleneck"``, ``layers=(3, 4, 6, 3)``, ``widths=(64, 128, 256, 512)``
    and ``stem_width=64`` this is ResNet-50 with torchvision's parameter names and
    shapes (so ImageNet weights load); with ``dilated=True`` the stages after
    ``layer2`` keep stride 1 and grow their dilation instead (x2 per stage), as
    in DINet.

    ``style`` is how the trunk computes with those parameters:

    - ``"reference"`` (the reference code's ResNet): a block's stride is on its
      1x1 conv, the max-pool has padding 0 and ``ceil_mode=True``, and every
      block of a dilated stage has that stage's dilation (2 in ``layer3``, 4 in
      ``layer4``); for basic blocks only the second conv is dilated;
    - ``"torchvision"``: the stride is on the 3x3 conv, the max-pool has padding
      1, and the first block of a dilated stage keeps the previous dilation.

    The grids are the same for inputs whose sides are multiples of 8 (480 x 640
    gives 120 x 160 after the max-pool, 60 x 80 at stride 8); `resnet_grid`
    gives them for any side.
    """

    def __init__(
        self,
        *,
        block: str = "bottleneck",
        layers: Sequence[int] = (3, 4, 6, 3),
        widths: Sequence[int] = (64, 128, 256, 512),
        stem_width: int = 64,
        dilated: bool = True,
        style: str = "reference",
    ) -> None:
        super().__init__()
        if block not in BLOCKS:
            raise ValueError(f"unknown block {block!r}; choose one of {sorted(BLOCKS)}")
        if not 1 <= len(layers) <= 4 or len(layers) != len(widths):
            raise ValueError(
                f"layers {list(layers)} and widths {list(widths)} must have the same length, 1 to 4"
            )
        _check_choice("trunk", style, TRUNKS)
        self.style = style
        self.block = BLOCKS[block]
        self.inplanes = stem_width
        self.dilation = 1
        self.conv1 = nn.Conv2d(3, stem_width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(stem_width)
        self.relu = nn.ReLU(inplace=True)
        if style == "reference":
            self.maxpool = nn.MaxPool2d(3, 2, 0, ceil_mode=True)
        else:
            self.maxpool = nn.MaxPool2d(3, 2, 1)
        for index, (blocks, width) in enumerate(zip(layers, widths, strict=True)):
            stride = 1 if index == 0 else 2
            dilate = dilated and index >= 2
            self.add_module(f"layer{index + 1}", self._make_layer(width, blocks, stride, dilate))
        self.num_layers = len(layers)
        self.stage_channels = [w * self.block.expansion for w in widths]
        self.out_channels = self.stage_channels[-1]
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
        first = self.dilation if self.style == "reference" else previous_dilation
        modules = [
            self.block(self.inplanes, planes, stride, downsample, dilation=first, style=self.style)
        ]
        self.inplanes = planes * expansion
        modules += [
            self.block(self.inplanes, planes, dilation=self.dilation, style=self.style)
            for _ in range(1, blocks)
        ]
        return nn.Sequential(*modules)

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for index in range(1, self.num_layers + 1):
            x = getattr(self, f"layer{index}")(x)
        return x


class DINetFeatures(nn.Module):
    """DINet's body: dilated ResNet, inception-like dilated encoder, conv decoder.

    The encoder is a 1x1 conv to E channels + ReLU and three parallel 3x3 convs
    (+ ReLU) with the given dilations; its output concatenates their sum and
    each of the three (4E channels). The decoder, conv3x3 4E->E + ReLU, gives
    `F` with C = E. The convs carry biases only with ``bias=True`` (the
    reference's have none).
    """

    def __init__(
        self,
        backbone: ResNetBackbone,
        *,
        channels: int = 512,
        dilations: Sequence[int] = (4, 8, 16),
        bias: bool = False,
    ) -> None:
        super().__init__()
        if len(dilations) != 3:
            raise ValueError(f"DINet's encoder takes three dilations, got {list(dilations)}")
        self.backbone = backbone
        self.reduce = nn.Sequential(
            nn.Conv2d(backbone.out_channels, channels, 1, bias=bias), nn.ReLU(inplace=True)
        )
        self.branches = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(channels, channels, 3, 1, d, d, bias=bias), nn.ReLU(inplace=True)
            )
            for d in dilations
        )
        self.decoder = nn.Sequential(
            nn.Conv2d(4 * channels, channels, 3, 1, 1, bias=bias), nn.ReLU(inplace=True)
        )
        self.out_channels = channels
        self.stride = backbone.stride

    def forward(self, x: Tensor) -> Tensor:
        x = self.reduce(self.backbone(x))
        branches = [branch(x) for branch in self.branches]
        return self.decoder(torch.cat([sum(branches), *branches], dim=1))


class SaliencyModel(nn.Module):
    """Features, N bases and the three saliency heads of docs/method.md 1-2.

    ``forward`` returns a dict with ``saliency`` (B x 1 x H x W, in [0, 1], at the
    input size) and, unless the head is ``plain``, ``prob`` (B x N x h x w).

    ``readout_bias``: whether the conv3x3 C->1 saliency layer has a bias (the
    reference's has none). ``upsample``: how the saliency map is resized to the
    input, ``nearest`` (the reference) or ``bilinear``. ``plain_neck``: layers
    that only the plain (baseline) head runs between ``F`` and the readout
    (DINet's reference baseline has one more conv there); none by default.
    """

    def __init__(
        self,
        features: nn.Module,
        *,
        n_bases: int = 512,
        head: str = "factorised",
        readout_bias: bool = False,
        upsample: str = "nearest",
        plain_neck: nn.Module | None = None,
    ):
        super().__init__()
        _check_choice("upsample", upsample, UPSAMPLING)
        channels = features.out_channels
        self.features = features
        self.bases = nn.Linear(channels, n_bases, bias=False)
        self.readout = nn.Conv2d(channels, 1, 3, 1, 1, bias=readout_bias)
        self.reformulated = nn.Conv2d(n_bases, 1, 3, 1, 1, bias=False)
        self.offset = nn.Parameter(torch.zeros(1))
        self.plain_neck = plain_neck if plain_neck is not None else nn.Identity()
        # ImageNet statistics for uint8 inputs (not saved: they are constants)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), False)
        self.n_bases = n_bases
        self.upsample = upsample
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
        saliency = torch.sigmoid(self.reformulated(prob) + self.offset)
        return _upsample(saliency, size, self.upsample)

    def normalise(self, image: Tensor) -> Tensor:
        """uint8 RGB (as the datasets deliver) to ImageNet-normalised float; float passes."""
        if image.dtype != torch.uint8:
            return image
        return (image.to(self.mean.dtype) / 255.0 - self.mean) / self.std

    def forward(self, image: Tensor) -> dict[str, Tensor]:
        size = (image.shape[-2], image.shape[-1])
        image = self.normalise(image)
        features = self.features(image)
        if self.head == "plain":
            saliency = torch.sigmoid(self.readout(self.plain_neck(features)))
            return {"saliency": _upsample(saliency, size, self.upsample)}
        prob = self.probability_maps(features)
        if self.head == "factorised":
            saliency = torch.sigmoid(self.readout(self.reconstruct(prob)))
            saliency = _upsample(saliency, size, self.upsample)
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


def _upsample(x: Tensor, size: tuple[int, int], mode: str = "nearest") -> Tensor:
    """Resize to ``size``: ``nearest`` (PyTorch's legacy nearest, as the reference's
    ``F.interpolate`` default) or ``bilinear`` (``align_corners=False``)."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    if mode == "nearest":
        return nnf.interpolate(x, size=tuple(size), mode="nearest")
    return nnf.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False)


def _rescale(x: Tensor, factor: float, mode: str = "nearest") -> Tensor:
    """Resize by ``factor`` (x2 upsampling, the half-size image) in the given mode."""
    if mode == "nearest":
        return nnf.interpolate(x, scale_factor=factor, mode="nearest")
    return nnf.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False)


class SALICONFeatures(nn.Module):
    """SALICON's two-scale body: one dilated ResNet on the image and on its half-size copy.

    As in the reference code, one conv3x3 to ``channels`` (256 in the paper;
    with a bias and no activation) is shared by both scales; the coarse scale's
    output is upsampled x2 to the fine grid and the two are concatenated as
    [coarse, fine], so ``F`` has C = 2 x channels at output stride 8. The
    half-size image and the x2 upsampling use ``upsample`` (nearest in the
    reference).
    """

    def __init__(
        self, backbone: ResNetBackbone, *, channels: int = 256, upsample: str = "nearest"
    ) -> None:
        super().__init__()
        _check_choice("upsample", upsample, UPSAMPLING)
        self.backbone = backbone
        self.encoder = nn.Conv2d(backbone.out_channels, channels, 3, 1, 1)
        self.upsample = upsample
        self.out_channels = 2 * channels
        self.stride = backbone.stride

    def forward(self, x: Tensor) -> Tensor:
        fine = self.encoder(self.backbone(x))
        half = _rescale(x, 0.5, self.upsample)
        coarse = self.encoder(self.backbone(half))
        coarse = _upsample(coarse, tuple(fine.shape[-2:]), self.upsample)
        return torch.cat([coarse, fine], dim=1)


class TransformerLayer(nn.Module):
    """One pre-norm transformer layer as the reference's TranSalNet has it.

    ``x + attention(norm1(x))``, then ``+ mlp(norm2(.))`` where the MLP is
    Linear(dim, 2 dim), GELU, Linear(2 dim, dim), GELU (a GELU after both
    layers); LayerNorm eps 1e-6, no dropout.
    """

    def __init__(self, dim: int, heads: int, mlp_ratio: int = 2) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attention = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = nn.Sequential(
            nn.Linear(dim, mlp_ratio * dim), nn.GELU(), nn.Linear(mlp_ratio * dim, dim), nn.GELU()
        )

    def forward(self, x: Tensor) -> Tensor:
        y = self.norm1(x)
        x = x + self.attention(y, y, y, need_weights=False)[0]
        return x + self.mlp(self.norm2(x))


class TokenEncoder(nn.Module):
    """A feature grid as tokens: linear projection, learned position embedding,
    ``layers`` `TransformerLayer`, a final LayerNorm (eps 1e-6)."""

    def __init__(self, in_channels: int, dim: int, heads: int, layers: int, tokens: int) -> None:
        super().__init__()
        self.project = nn.Linear(in_channels, dim)
        self.position = nn.Parameter(torch.zeros(1, tokens, dim))
        nn.init.trunc_normal_(self.position, std=0.02)
        self.layers = nn.ModuleList(TransformerLayer(dim, heads) for _ in range(layers))
        self.norm = nn.LayerNorm(dim, eps=1e-6)

    def forward(self, x: Tensor) -> Tensor:
        b, _, h, w = x.shape
        if h * w != self.position.shape[1]:
            raise ValueError(
                f"a {h}x{w} feature grid does not fit the {self.position.shape[1]} position "
                "embeddings built for the configured input_size; resize inputs to it"
            )
        tokens = self.project(x.flatten(2).transpose(1, 2)) + self.position
        for layer in self.layers:
            tokens = layer(tokens)
        return self.norm(tokens).transpose(1, 2).reshape(b, -1, h, w)


def _conv_bn_relu(inputs: int, outputs: int) -> nn.Sequential:
    """conv3x3 (with a bias, as the reference's) + BatchNorm + ReLU."""
    return nn.Sequential(
        nn.Conv2d(inputs, outputs, 3, 1, 1),
        nn.BatchNorm2d(outputs),
        nn.ReLU(inplace=True),
    )


def resnet_grid(size: int, stride: int, trunk: str = "reference") -> int:
    """Side of a ResNet feature grid for an input side ``size``.

    ``stride`` is the nominal stride of an undilated stage (2 after the stem
    conv, 4 after the max-pool and ``layer1``, 8, 16, 32 after ``layer2`` to
    ``layer4``). Each stride-2 conv gives ``ceil(n / 2)``; the max-pool gives
    ``ceil(n / 2)`` with torchvision's padding 1 but ``floor(n / 2)`` with the
    reference's padding 0 and ``ceil_mode`` (they differ on odd sides only).
    """
    _check_choice("trunk", trunk, TRUNKS)
    size = (size - 1) // 2 + 1  # 7x7 conv, stride 2, padding 3
    if stride >= 4:
        size = size // 2 if trunk == "reference" else (size - 1) // 2 + 1
    for _ in range(max(stride.bit_length() - 3, 0)):
        size = (size - 1) // 2 + 1
    return size


class TranSalNetFeatures(nn.Module):
    """TranSalNet's body: transformer encoders on three ResNet scales, a top-down decoder.

    A plain (undilated) ResNet gives layer2/3/4 grids at strides 8, 16 and 32.
    Each is encoded as tokens (``dims`` = 512, 768, 768 with ``heads`` = 8,
    12, 12 in the paper, ``layers`` transformer layers, `TokenEncoder`).
    Top-down, the stride-32 tokens go through conv + BN + ReLU, are upsampled
    x2, resized to the stride-16 grid and multiplied into the stride-16 tokens
    (then ReLU); the same into the stride-8 tokens; two more conv + x2 stages
    and a final conv give ``F`` with C = ``channels`` (128) at output stride 2.
    Every resampling uses ``upsample`` (nearest in the reference).
    """

    def __init__(
        self,
        backbone: ResNetBackbone,
        input_size: Sequence[int],
        *,
        dims: Sequence[int] = (512, 768, 768),
        heads: Sequence[int] = (8, 12, 12),
        layers: int = 2,
        channels: int = 128,
        upsample: str = "nearest",
    ) -> None:
        super().__init__()
        if backbone.num_layers != 4:
            raise ValueError("TranSalNet needs a backbone with four stages")
        if len(dims) != 3 or len(heads) != 3:
            raise ValueError(f"TranSalNet takes three dims and heads, got {dims} and {heads}")
        _check_choice("upsample", upsample, UPSAMPLING)
        self.backbone = backbone
        widths = backbone.stage_channels[1:]
        height, width = input_size

        def tokens(stride: int) -> int:
            return resnet_grid(height, stride, backbone.style) * resnet_grid(
                width, stride, backbone.style
            )

        self.encoders = nn.ModuleList(
            TokenEncoder(widths[i], dims[i], heads[i], layers, tokens(8 * 2**i)) for i in range(3)
        )
        self.up32 = _conv_bn_relu(dims[2], dims[1])
        self.up16 = _conv_bn_relu(dims[1], dims[0])
        self.up8 = _conv_bn_relu(dims[0], dims[0])
        self.up4 = _conv_bn_relu(dims[0], channels)
        self.out = _conv_bn_relu(channels, channels)
        self.upsample = upsample
        self.out_channels = channels
        self.stride = 2

    def forward(self, x: Tensor) -> Tensor:
        trunk, mode = self.backbone, self.upsample
        x = trunk.maxpool(trunk.relu(trunk.bn1(trunk.conv1(x))))
        s8 = trunk.layer2(trunk.layer1(x))
        s16 = trunk.layer3(s8)
        s32 = trunk.layer4(s16)
        t8, t16, t32 = (e(s) for e, s in zip(self.encoders, (s8, s16, s32), strict=True))
        y = _upsample(_rescale(self.up32(t32), 2.0, mode), tuple(t16.shape[-2:]), mode)
        y = torch.relu(y * t16)
        y = _upsample(_rescale(self.up16(y), 2.0, mode), tuple(t8.shape[-2:]), mode)
        y = torch.relu(y * t8)
        y = _rescale(self.up4(_rescale(self.up8(y), 2.0, mode)), 2.0, mode)
        return self.out(y)


def torchvision_cached_weights() -> Path:
    """Where torchvision keeps ResNet-50 ImageNet weights once downloaded (never fetched here)."""
    from torchvision.models import ResNet50_Weights

    url = ResNet50_Weights.IMAGENET1K_V1.url
    return Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]


def load_backbone_weights(backbone: nn.Module, weights: str | None) -> None:
    """Load ImageNet weights from a local file, from torchvision's cache, or keep random init.

    ``weights`` is a path, ``torchvision`` (the file torchvision's
    ``resnet50(weights="IMAGENET1K_V1")`` stores in its cache) or ``none``.
    Nothing is downloaded: a missing file is an error naming the path.
    """
    if weights in (None, "", "none"):
        return
    if weights == "torchvision":
        path = torchvision_cached_weights()
        if not path.is_file():
            raise MissingFileError(
                f"backbone weights {path}: not in torchvision's cache. Nothing is downloaded "
                "at run time: copy resnet50-0676ba61.pth there, give a file path, or use 'none'"
            )
    else:
        path = Path(weights).expanduser()
    if not path.is_file():
        raise MissingFileError(
            f"backbone weights {path}: file not found (use 'none' for random init)"
        )
    state = torch.load(path, map_location="cpu", weights_only=True)
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    own = backbone.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    resized = [k for k in own if k in state and state[k].shape != own[k].shape]
    if missing or unexpected or resized:
        raise ValueError(
            f"backbone weights {path} do not fit the configured backbone: "
            f"{len(missing)} missing keys (e.g. {missing[:3]}), "
            f"{len(unexpected)} unexpected (e.g. {unexpected[:3]}), "
            f"{len(resized)} of another shape (e.g. {resized[:3]})"
        )
    backbone.load_state_dict(state)


def _trunk(backbone: dict | None, weights: str | None, **overrides) -> ResNetBackbone:
    trunk = ResNetBackbone(**{**(backbone or {}), **overrides})
    load_backbone_weights(trunk, weights)
    return trunk


OPTIONS_DOC = """
    Options shared by the three architectures, each defaulting to what the
    reference code computes:

    - ``trunk``: ``"reference"`` (stride on a bottleneck's 1x1 conv, max-pool
      padding 0 with ``ceil_mode``, every block of a dilated stage dilated) or
      ``"torchvision"`` (stride on the 3x3 conv, max-pool padding 1, the first
      block of a dilated stage keeps the previous dilation): see
      `ResNetBackbone`. ImageNet weights load into either.
    - ``upsample``: ``"nearest"`` or ``"bilinear"`` (``align_corners=False``),
      for every resampling in the model, the saliency map's to the input size
      included.
    - ``readout_bias``: the conv3x3 C->1 saliency layer has a bias (False: the
      reference's has none).
"""


def dinet(
    *,
    backbone: dict | None = None,
    encoder_channels: int = 512,
    encoder_dilations: Sequence[int] = (4, 8, 16),
    n_bases: int = 512,
    head: str = "factorised",
    weights: str | None = "none",
    input_size: Sequence[int] | None = None,
    trunk: str = "reference",
    upsample: str = "nearest",
    readout_bias: bool = False,
    conv_bias: bool = False,
    baseline_conv: bool = True,
) -> SaliencyModel:
    """DINet (dilated ResNet-50 + inception-like encoder) with a factorised head.

    The defaults are the paper's model; ``backbone`` (keyword arguments of
    `ResNetBackbone`) and ``encoder_channels`` make it CPU-sized.
    DINet's own options:

    - ``conv_bias``: the encoder and decoder convs have biases (False: the
      reference's have none);
    - ``baseline_conv``: the plain (baseline) head runs one more conv3x3 E->E +
      ReLU on ``F`` before the saliency layer, as the reference's baseline
      decoder does (conv 4E->E, conv E->E, conv E->1); False: the baseline
      reads ``F`` directly, like the factorised heads.
    """
    features = DINetFeatures(
        _trunk(backbone, weights, style=trunk),
        channels=encoder_channels,
        dilations=encoder_dilations,
        bias=conv_bias,
    )
    neck = None
    if baseline_conv:
        neck = nn.Sequential(
            nn.Conv2d(encoder_channels, encoder_channels, 3, 1, 1, bias=conv_bias),
            nn.ReLU(inplace=True),
        )
    return SaliencyModel(
        features,
        n_bases=n_bases,
        head=head,
        readout_bias=readout_bias,
        upsample=upsample,
        plain_neck=neck,
    )


def salicon(
    *,
    backbone: dict | None = None,
    scale_channels: int = 256,
    n_bases: int = 512,
    head: str = "factorised",
    weights: str | None = "none",
    input_size: Sequence[int] | None = None,
    trunk: str = "reference",
    upsample: str = "nearest",
    readout_bias: bool = False,
) -> SaliencyModel:
    """SALICON (two-scale dilated ResNet-50, C = 2 x ``scale_channels``) with a factorised head.

    The half-size copy is the input resized by 0.5 (the reference resizes to a
    fixed 240 x 320, the same at its 480 x 640 input).
    """
    features = SALICONFeatures(
        _trunk(backbone, weights, style=trunk), channels=scale_channels, upsample=upsample
    )
    return SaliencyModel(
        features, n_bases=n_bases, head=head, readout_bias=readout_bias, upsample=upsample
    )


def transalnet(
    *,
    backbone: dict | None = None,
    transformer_dims: Sequence[int] = (512, 768, 768),
    transformer_heads: Sequence[int] = (8, 12, 12),
    transformer_layers: int = 2,
    decoder_channels: int = 128,
    n_bases: int = 512,
    head: str = "factorised",
    weights: str | None = "none",
    input_size: Sequence[int] = (240, 320),
    trunk: str = "reference",
    upsample: str = "nearest",
    readout_bias: bool = False,
) -> SaliencyModel:
    """TranSalNet (plain ResNet-50, transformer encoders at three scales) with a factorised head.

    Position embeddings are sized for ``input_size`` (240 x 320 in the paper:
    1200, 300 and 80 tokens at strides 8, 16 and 32).
    """
    features = TranSalNetFeatures(
        _trunk(backbone, weights, dilated=False, style=trunk),
        input_size,
        dims=transformer_dims,
        heads=transformer_heads,
        layers=transformer_layers,
        channels=decoder_channels,
        upsample=upsample,
    )
    return SaliencyModel(
        features, n_bases=n_bases, head=head, readout_bias=readout_bias, upsample=upsample
    )


def module(
    *,
    module: str,
    options: Mapping | None = None,
    n_bases: int = 512,
    head: str = "factorised",
    input_size: Sequence[int] = (480, 640),
    upsample: str = "nearest",
    readout_bias: bool = False,
) -> SaliencyModel:
    """A user's network (`saldissect.models.plugins.ModuleFeatures`) with the
    factorised head: ``module`` is ``package.module:function``, called with
    ``options``, returning an ``nn.Module`` from images to B x C x h x w features.
    ``upsample`` and ``readout_bias`` as for the built-in architectures."""
    body = import_object(module)(**dict(options or {}))
    features = ModuleFeatures(body, input_size, module)
    return SaliencyModel(
        features, n_bases=n_bases, head=head, readout_bias=readout_bias, upsample=upsample
    )


def torchvision(
    *,
    network: str,
    layer: str,
    network_options: Mapping | None = None,
    weights: str | None = "none",
    n_bases: int = 512,
    head: str = "factorised",
    input_size: Sequence[int] = (480, 640),
    upsample: str = "nearest",
    readout_bias: bool = False,
) -> SaliencyModel:
    """A torchvision classification network as the trunk
    (`saldissect.models.plugins.TorchvisionFeatures`): ``network`` by name, built
    with ``network_options`` (e.g. ``image_size`` of a vision transformer), its
    features at node ``layer``, ``weights`` a local state dict of the network or
    ``none``. ``upsample`` and ``readout_bias`` as for the built-in architectures."""
    features = TorchvisionFeatures(
        network, layer, input_size, options=network_options, weights=weights
    )
    return SaliencyModel(
        features, n_bases=n_bases, head=head, readout_bias=readout_bias, upsample=upsample
    )


for _factory in (dinet, salicon, transalnet):
    if _factory.__doc__:  # None under python -OO
        _factory.__doc__ += OPTIONS_DOC


MODELS: dict[str, Callable[..., SaliencyModel]] = {
    "dinet": dinet,
    "salicon": salicon,
    "transalnet": transalnet,
    "module": module,
    "torchvision": torchvision,
}


def get_model(name: str, **cfg) -> SaliencyModel:
    """Build a registered architecture by name with keyword options."""
    if name not in MODELS:
        raise ValueError(f"unknown architecture {name!r}; choose one of {sorted(MODELS)}")
    return MODELS[name](**cfg)


#: Keys of a ``models:`` entry that are not options of its architecture.
ENTRY_KEYS = ("arch", "checkpoints")


def arch_options(arch: str) -> list[str]:
    """The options a ``models:`` entry of ``arch`` may set: its factory's keywords but ``head``."""
    if arch not in MODELS:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {sorted(MODELS)}")
    return [name for name in inspect.signature(MODELS[arch]).parameters if name != "head"]


def model_options(entry: Mapping) -> dict:
    """The architecture options of a ``models:`` entry (without ``arch`` and
    ``checkpoints``). A key its architecture does not take is refused, never
    dropped: `ConfigError` names it and the keys that architecture takes."""
    accepted = arch_options(entry["arch"])
    options = {key: value for key, value in entry.items() if key not in ENTRY_KEYS}
    refused = sorted(set(options) - set(accepted))
    if refused:
        raise ConfigError(
            f"model option {', '.join(map(repr, refused))} does not apply to arch "
            f"{entry['arch']}, whose options are: {', '.join(accepted)}"
        )
    return options


def without_weights(entry: Mapping) -> dict:
    """``entry`` built with random initial weights where its architecture reads a
    weights file (a checkpoint or a shapes-only pass replaces them anyway)."""
    if "weights" in arch_options(entry["arch"]):
        return {**entry, "weights": "none"}
    return dict(entry)


def build(entry: Mapping, head: str) -> SaliencyModel:
    """The model of a ``models:`` entry, with ``head`` (`model_options` checks its keys)."""
    return get_model(entry["arch"], head=head, **model_options(entry))
