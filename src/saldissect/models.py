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

Three bodies (``features``) are registered, each on a ResNet trunk that is
ResNet-50 by default and CPU-sized by config: ``dinet`` (dilated ResNet,
inception-like encoder, stride 8), ``salicon`` (the dilated ResNet at two
scales, stride 8) and ``transalnet`` (transformer encoders on three ResNet
scales, top-down decoder, stride 2). Models are built by name through
`get_model`, in torchvision's manner.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import torch
import torch.nn.functional as nnf
from torch import Tensor, nn

HEADS = ("plain", "factorised", "reformulated")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


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


class Bottleneck(nn.Module):
    """ResNet bottleneck block (1x1, 3x3, 1x1 convs, x4 expansion), with torchvision's
    parameter names so its ImageNet weights load as they are. Written here rather
    than imported: importing torchvision costs every job about a second."""

    expansion = 4

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
        width = int(planes * (base_width / 64.0)) * groups
        self.conv1 = nn.Conv2d(inplanes, width, 1, bias=False)
        self.bn1 = norm_layer(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, dilation, dilation, groups, bias=False)
        self.bn2 = norm_layer(width)
        self.conv3 = nn.Conv2d(width, planes * self.expansion, 1, bias=False)
        self.bn3 = norm_layer(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

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
        # ImageNet statistics for uint8 inputs (not saved: they are constants)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), False)
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


class SALICONFeatures(nn.Module):
    """SALICON's two-scale body: one dilated ResNet on the image and on its half-size copy.

    Each scale goes through its own conv3x3 to ``channels`` (256 in the paper);
    the coarse scale is upsampled to the fine grid and the two are concatenated,
    so ``F`` has C = 2 x channels at output stride 8.
    """

    def __init__(self, backbone: ResNetBackbone, *, channels: int = 256) -> None:
        super().__init__()
        self.backbone = backbone
        self.fine = nn.Sequential(
            nn.Conv2d(backbone.out_channels, channels, 3, 1, 1), nn.ReLU(inplace=True)
        )
        self.coarse = nn.Sequential(
            nn.Conv2d(backbone.out_channels, channels, 3, 1, 1), nn.ReLU(inplace=True)
        )
        self.out_channels = 2 * channels
        self.stride = backbone.stride

    def forward(self, x: Tensor) -> Tensor:
        fine = self.fine(self.backbone(x))
        half = nnf.interpolate(x, scale_factor=0.5, mode="bilinear", align_corners=False)
        coarse = _upsample(self.coarse(self.backbone(half)), tuple(fine.shape[-2:]))
        return torch.cat([fine, coarse], dim=1)


class TokenEncoder(nn.Module):
    """A feature grid as tokens: linear projection, learned position embedding, transformer."""

    def __init__(
        self, in_channels: int, dim: int, heads: int, layers: int, tokens: int, dropout: float
    ) -> None:
        super().__init__()
        self.project = nn.Linear(in_channels, dim)
        self.position = nn.Parameter(torch.zeros(1, tokens, dim))
        nn.init.trunc_normal_(self.position, std=0.02)
        layer = nn.TransformerEncoderLayer(
            dim, heads, 4 * dim, dropout, activation="gelu", batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor) -> Tensor:
        b, _, h, w = x.shape
        if h * w != self.position.shape[1]:
            raise ValueError(
                f"a {h}x{w} feature grid does not fit the {self.position.shape[1]} position "
                "embeddings built for the configured input_size; resize inputs to it"
            )
        tokens = self.project(x.flatten(2).transpose(1, 2)) + self.position
        tokens = self.norm(self.encoder(tokens))
        return tokens.transpose(1, 2).reshape(b, -1, h, w)


def _conv_bn_relu(inputs: int, outputs: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(inputs, outputs, 3, 1, 1, bias=False),
        nn.BatchNorm2d(outputs),
        nn.ReLU(inplace=True),
    )


def resnet_grid(size: int, stride: int) -> int:
    """Side of a ResNet feature grid at ``stride`` for an input side ``size`` (ceil halving)."""
    for _ in range(stride.bit_length() - 1):
        size = -(-size // 2)
    return size


class TranSalNetFeatures(nn.Module):
    """TranSalNet's body: transformer encoders on three ResNet scales, a top-down decoder.

    A plain (undilated) ResNet gives layer2/3/4 grids at strides 8, 16 and 32.
    Each is encoded as tokens (``dims`` = 512, 768, 768 with ``heads`` = 8,
    12, 12 in the paper, ``layers`` transformer layers). Top-down, the stride-32
    tokens are convolved, upsampled and multiplied into the stride-16 tokens,
    then into the stride-8 tokens; two more conv + x2 stages and a final conv
    give ``F`` with C = ``channels`` (128) at output stride 2.
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
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        if backbone.num_layers != 4:
            raise ValueError("TranSalNet needs a backbone with four stages")
        if len(dims) != 3 or len(heads) != 3:
            raise ValueError(f"TranSalNet takes three dims and heads, got {dims} and {heads}")
        self.backbone = backbone
        widths = backbone.stage_channels[1:]
        height, width = input_size
        self.encoders = nn.ModuleList(
            TokenEncoder(
                widths[i],
                dims[i],
                heads[i],
                layers,
                resnet_grid(height, 8 * 2**i) * resnet_grid(width, 8 * 2**i),
                dropout,
            )
            for i in range(3)
        )
        self.up32 = _conv_bn_relu(dims[2], dims[1])
        self.up16 = _conv_bn_relu(dims[1], dims[0])
        self.up8 = _conv_bn_relu(dims[0], dims[0])
        self.up4 = _conv_bn_relu(dims[0], channels)
        self.out = _conv_bn_relu(channels, channels)
        self.out_channels = channels
        self.stride = 2

    def forward(self, x: Tensor) -> Tensor:
        trunk = self.backbone
        x = trunk.maxpool(trunk.relu(trunk.bn1(trunk.conv1(x))))
        s8 = trunk.layer2(trunk.layer1(x))
        s16 = trunk.layer3(s8)
        s32 = trunk.layer4(s16)
        t8, t16, t32 = (e(s) for e, s in zip(self.encoders, (s8, s16, s32), strict=True))
        y = _upsample(_double(self.up32(t32)), tuple(t16.shape[-2:]))
        y = torch.relu(y * t16)
        y = _upsample(_double(self.up16(y)), tuple(t8.shape[-2:]))
        y = torch.relu(y * t8)
        y = _double(self.up4(_double(self.up8(y))))
        return self.out(y)


def _double(x: Tensor) -> Tensor:
    return nnf.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)


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
            raise FileNotFoundError(
                f"backbone weights {path}: not in torchvision's cache. Nothing is downloaded "
                "at run time: copy resnet50-0676ba61.pth there, give a file path, or use 'none'"
            )
    else:
        path = Path(weights).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
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


def dinet(
    *,
    backbone: dict | None = None,
    encoder_channels: int = 512,
    encoder_dilations: Sequence[int] = (4, 8, 16),
    n_bases: int = 512,
    head: str = "factorised",
    weights: str | None = "none",
    input_size: Sequence[int] | None = None,
) -> SaliencyModel:
    """DINet (dilated ResNet-50 + inception-like encoder) with a factorised head.

    The defaults are the paper's model; ``backbone`` (keyword arguments of
    `ResNetBackbone`) and ``encoder_channels`` make it CPU-sized.
    """
    features = DINetFeatures(
        _trunk(backbone, weights), channels=encoder_channels, dilations=encoder_dilations
    )
    return SaliencyModel(features, n_bases=n_bases, head=head)


def salicon(
    *,
    backbone: dict | None = None,
    scale_channels: int = 256,
    n_bases: int = 512,
    head: str = "factorised",
    weights: str | None = "none",
    input_size: Sequence[int] | None = None,
) -> SaliencyModel:
    """SALICON (two-scale dilated ResNet-50, C = 2 x ``scale_channels``) with a factorised head."""
    features = SALICONFeatures(_trunk(backbone, weights), channels=scale_channels)
    return SaliencyModel(features, n_bases=n_bases, head=head)


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
) -> SaliencyModel:
    """TranSalNet (plain ResNet-50, transformer encoders at three scales) with a factorised head.

    Position embeddings are sized for ``input_size`` (240 x 320 in the paper).
    """
    features = TranSalNetFeatures(
        _trunk(backbone, weights, dilated=False),
        input_size,
        dims=transformer_dims,
        heads=transformer_heads,
        layers=transformer_layers,
        channels=decoder_channels,
    )
    return SaliencyModel(features, n_bases=n_bases, head=head)


MODELS: dict[str, Callable[..., SaliencyModel]] = {
    "dinet": dinet,
    "salicon": salicon,
    "transalnet": transalnet,
}


def get_model(name: str, **cfg) -> SaliencyModel:
    """Build a registered architecture by name with keyword options."""
    if name not in MODELS:
        raise ValueError(f"unknown architecture {name!r}; choose one of {sorted(MODELS)}")
    return MODELS[name](**cfg)
