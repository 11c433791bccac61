"""Features from outside the package (docs/method.md 1, "Your own network").

Two bodies a ``models:`` entry can name instead of the built-in architectures;
the workflow adds the factorised head, phase two, thresholds, dissection,
contributions and interactions around either:

- ``arch: module``: ``module: package.module:function``, a function the user
  writes, called with ``options`` as keyword arguments, returning an
  ``nn.Module`` that maps an ImageNet-normalised image batch B x 3 x H x W to a
  feature map B x C x h x w;
- ``arch: torchvision``: ``network`` is a torchvision classification network
  by name (``torchvision.models.get_model``, built with ``network_options``)
  or a network class by import path (``torchvision.models:VisionTransformer``),
  its features taken at the node ``layer`` (a name of
  ``torchvision.models.feature_extraction.get_graph_node_names``); a vision
  transformer's tokens (B x T x D, the class token first) become a D x h x w
  grid of its patches. ``weights`` is a local state-dict file of that network
  (its ImageNet weights, saved once) or ``none``; nothing is downloaded.

Both are checked once when built, with a zero image of the model's input size:
a path that does not import, a function that returns no module, or an output
that is not a feature map stops the run with one line (`PluginError`).
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

from saldissect.core.config import ConfigError
from saldissect.core.errors import MissingFileError


class PluginError(ConfigError):
    """A model from outside the package that cannot be used (one line)."""


def import_object(path: str) -> Callable:
    """``package.module:function`` (or ``package.module.function``) imported."""
    module_name, sep, name = path.partition(":")
    if not sep:
        module_name, _, name = path.rpartition(".")
    if not module_name or not name:
        raise PluginError(f"module {path!r}: expected package.module:function")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise PluginError(f"module {path!r}: cannot import {module_name} ({error})") from None
    if not hasattr(module, name):
        raise PluginError(f"module {path!r}: {module_name} has no {name}")
    found = getattr(module, name)
    if not callable(found):
        raise PluginError(f"module {path!r}: {name} is not callable")
    return found


def _feature_map(output, what: str) -> Tensor:
    if isinstance(output, Mapping) and len(output) == 1:
        output = next(iter(output.values()))
    if not isinstance(output, Tensor) or output.ndim != 4:
        shape = tuple(output.shape) if isinstance(output, Tensor) else type(output).__name__
        raise PluginError(f"{what} returned {shape}: expected a B x C x h x w feature map")
    return output


def probe_channels(features: nn.Module, input_size: Sequence[int], what: str) -> int:
    """Channels C of ``features`` on a zero image of ``input_size``, and a check that
    its output is a feature map no larger than the image."""
    height, width = input_size
    parameter = next(iter(features.parameters()), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    was_training = features.training
    features.eval()
    with torch.no_grad():
        try:
            out = features(torch.zeros(1, 3, height, width, device=device))
        except PluginError:
            raise
        except Exception as error:  # whatever the network raises on the model's input size
            message = str(error).strip().splitlines()[0] if str(error).strip() else ""
            raise PluginError(
                f"{what} fails on a {height} x {width} image (models.<name>.input_size): "
                f"{type(error).__name__}: {message}"
            ) from None
        out = _feature_map(out, what)
    features.train(was_training)
    if out.shape[2] > height or out.shape[3] > width:
        raise PluginError(
            f"{what} returned a {out.shape[2]} x {out.shape[3]} grid for a {height} x {width} "
            "image: expected features no larger than the image"
        )
    return int(out.shape[1])


class ModuleFeatures(nn.Module):
    """A user's module as the features ``F`` (its output checked to be B x C x h x w)."""

    def __init__(self, body: nn.Module, input_size: Sequence[int], name: str) -> None:
        super().__init__()
        if not isinstance(body, nn.Module):
            raise PluginError(f"module {name!r} returned {type(body).__name__}, not an nn.Module")
        self.body, self.name = body, name
        self.out_channels = probe_channels(body, input_size, f"module {name!r}")

    def forward(self, image: Tensor) -> Tensor:
        return _feature_map(self.body(image), f"module {self.name!r}")


class TorchvisionFeatures(nn.Module):
    """A torchvision network's output at node ``layer``, as a feature map."""

    def __init__(
        self,
        network: str,
        layer: str,
        input_size: Sequence[int],
        *,
        options: Mapping | None = None,
        weights: str | None = "none",
    ) -> None:
        super().__init__()
        from torchvision import models
        from torchvision.models.feature_extraction import (
            create_feature_extractor,
            get_graph_node_names,
        )

        if ":" in network:  # a network class or builder by import path
            build = import_object(network)
        elif network in models.list_models(module=models):
            build = functools.partial(models.get_model, network, weights=None)
        else:
            raise PluginError(
                f"network {network!r}: not a torchvision classification network "
                "(torchvision.models.list_models(): e.g. resnet18, convnext_tiny, vit_b_16) "
                "nor an import path (torchvision.models:VisionTransformer)"
            )
        try:
            model = build(**dict(options or {}))
        except TypeError as error:
            raise PluginError(f"network {network!r} with {dict(options or {})}: {error}") from None
        load_network_weights(model, weights, network)
        nodes = get_graph_node_names(model)[1]
        if layer not in nodes and not any(n.startswith(f"{layer}.") for n in nodes):
            near = [n for n in nodes if n.startswith(layer.split(".")[0])][:8] or nodes[-8:]
            raise PluginError(
                f"network {network!r} has no layer {layer!r}; its layers include: {', '.join(near)}"
            )
        self.body = create_feature_extractor(model, return_nodes={layer: "features"})
        self.patch = getattr(model, "patch_size", None)
        self.what = f"network {network!r} at layer {layer!r}"
        self.out_channels = probe_channels(self, input_size, self.what)

    def forward(self, image: Tensor) -> Tensor:
        out = self.body(image)["features"]
        if out.ndim == 3 and self.patch:  # B x T x D tokens, the class token(s) first
            height, width = image.shape[2] // self.patch, image.shape[3] // self.patch
            grid = out[:, out.shape[1] - height * width :]
            out = grid.transpose(1, 2).reshape(out.shape[0], out.shape[2], height, width)
        return _feature_map(out, self.what)


def load_network_weights(model: nn.Module, weights: str | None, network: str) -> None:
    """A local state-dict file of the whole ``network`` into ``model``, or nothing
    (``none``); a file that does not fit names what does not."""
    if weights in (None, "", "none"):
        return
    path = Path(weights).expanduser()
    if not path.is_file():
        raise MissingFileError(f"weights of {network} {path}: file not found (or 'none')")
    state = torch.load(path, map_location="cpu", weights_only=True)
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as error:  # a tensor of another shape
        first = str(error).strip().splitlines()[-1].strip()
        raise PluginError(f"weights {path} do not fit {network}: {first}") from None
    if result.missing_keys or result.unexpected_keys:
        raise PluginError(
            f"weights {path} do not fit {network}: {len(result.missing_keys)} missing keys "
            f"(e.g. {result.missing_keys[:3]}), {len(result.unexpected_keys)} unexpected "
            f"(e.g. {result.unexpected_keys[:3]})"
        )
