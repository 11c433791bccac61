"""Import the authors' checkpoints (github.com/szzexpoi/saliency_analysis) into our models.

The reference scripts save a bare ``state_dict()`` of their model
(``torch.save(model.module.state_dict(), ...)``). Its names follow their
modules:

- DINet and SALICON: the dilated ResNet-50 is ``dilated_backbone.<i>`` (an
  ``nn.Sequential`` of torchvision's children: ``0`` conv1, ``1`` bn1, ``4`` to
  ``7`` layer1 to layer4); DINet's encoder is ``encoder.inception_1`` (1x1 to
  E) and ``encoder.inception_2..4`` (the dilated branches), its decoder
  ``decoder.v_decoder`` (4E->E, the features ``F``), ``decoder.prototype``
  (the N x E bases), ``decoder.sal_decoder`` (phase one's E->1 saliency conv)
  or ``decoder.sal_decoder_1`` (phase two's N->1 conv); its baseline decoder is
  ``decoder.decoder_1..3`` (4E->E, E->E, E->1). SALICON has ``v_encoder``
  (the shared 2048->256 conv), ``prototype``, ``sal_layer`` (phase one and
  baseline) and ``sal_layer_`` (phase two).
- TranSalNet: ``backbone.*`` (torchvision's names; its unused ``backbone.fc``
  is dropped), ``trans_1/2/3`` (the transformer encoders at strides 32, 16,
  8: ``patch_encoder.projection``, ``patch_encoder.pos_embedding``,
  ``attention.<l>``, ``norm_before.<l>``, ``norm_after.<l>``,
  ``mlp.<l>.mlp.fc_1/fc_2``, ``output_norm``), ``sal_decoder_1..4`` (the
  top-down decoder), ``prototype``, ``sal_cls`` (phase one and baseline) and
  ``sal_cls_1`` (phase two).

`load_reference` builds our model (`saldissect.models.networks`, whose defaults compute
what the reference computes) with the sizes the file's tensors give (N, DINet's
E, SALICON's scale width, TranSalNet's token widths and depth) and loads the
weights; a file that does not fit is refused with one
`ReferenceCheckpointError` naming every unmatched key and shape. Parameters
our model has and the file cannot hold keep their (seeded) initial values:
the scalar phase-two ``offset`` (0, as the reference has none), the phase-two
conv of a phase-one file (as our phase one leaves it for phase two to train),
the phase-one saliency conv of a phase-two file (unused by its head), and the
bases of a baseline. `save_imported` writes our checkpoint format (the
``model.pt`` of `saldissect.training.train`), so the workflow can use the result as a
trained model.

The reference has no interaction variant (docs/method.md 6 is this project's), so
there is nothing of it to import.

Command line (also installed as ``saldissect-import``)::

    python -m saldissect.models.reference inspect IN
    python -m saldissect.models.reference convert --arch dinet --phase phase1 IN OUT
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from saldissect.core.io import CheckpointError, load_checkpoint, save_checkpoint
from saldissect.models import networks
from saldissect.models.networks import SaliencyModel

log = logging.getLogger(__name__)

ARCHS = ("dinet", "salicon", "transalnet")
PHASES = ("baseline", "phase1", "phase2")
HEADS = {"baseline": "plain", "phase1": "factorised", "phase2": "reformulated"}
# Our options whose reference value the import expects (a warning otherwise).
REFERENCE_OPTIONS = {"trunk": "reference", "upsample": "nearest"}
# One key that only each architecture's files hold, and each phase's saliency layer.
SIGNATURE = {
    "dinet": "encoder.inception_1.weight",
    "salicon": "v_encoder.weight",
    "transalnet": "trans_1.patch_encoder.projection.weight",
}
SALIENCY_LAYER = {
    "dinet": {
        "baseline": "decoder.decoder_3",
        "phase1": "decoder.sal_decoder",
        "phase2": "decoder.sal_decoder_1",
    },
    "salicon": {"baseline": "sal_layer", "phase1": "sal_layer", "phase2": "sal_layer_"},
    "transalnet": {"baseline": "sal_cls", "phase1": "sal_cls", "phase2": "sal_cls_1"},
}
PROTOTYPE = {"dinet": "decoder.prototype", "salicon": "prototype", "transalnet": "prototype"}
# Reference keys that have no counterpart and are dropped on purpose.
IGNORED = {"transalnet": ("backbone.fc.",)}
LISTED = 25  # keys named per kind of mismatch before "... and n more"


class ReferenceCheckpointError(CheckpointError):
    """A reference checkpoint that does not fit the model: names every key and shape."""


@dataclass
class Imported:
    """A model with a reference checkpoint's weights, and how it was made."""

    model: SaliencyModel
    config: dict  # the model entry (as under ``models:``) that rebuilds ``model``
    arch: str
    phase: str
    head: str
    source: str
    kept: list[str] = field(default_factory=list)  # our keys left at their initial values
    ignored: list[str] = field(default_factory=list)  # reference keys dropped on purpose


# ---------------------------------------------------------------- reading
def read_reference_state(path: str | Path) -> dict[str, Tensor]:
    """A reference state dict, loaded with ``weights_only=True`` (no code runs).

    A ``module.`` prefix (a model saved inside ``nn.DataParallel``) is removed.
    """
    state = load_checkpoint(path)
    if not isinstance(state, Mapping) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ReferenceCheckpointError(
            f"reference checkpoint {path}: not a bare state dict of tensors (the reference "
            "scripts save model.state_dict()); a saldissect model.pt is already imported"
        )
    state = dict(state)
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state


def detect_arch(state: Mapping[str, Tensor]) -> str:
    """Which reference architecture a state dict is from, by a key only it has."""
    found = [arch for arch, key in SIGNATURE.items() if key in state]
    if len(found) != 1:
        raise ReferenceCheckpointError(
            "cannot tell the architecture: a reference state dict has exactly one of "
            + ", ".join(f"{key} ({arch})" for arch, key in SIGNATURE.items())
        )
    return found[0]


def detect_phase(state: Mapping[str, Tensor], arch: str) -> str:
    """``phase2`` (the N->1 conv), ``phase1`` (bases and the C->1 conv) or ``baseline``."""
    layers = SALIENCY_LAYER[arch]
    if f"{layers['phase2']}.weight" in state:
        return "phase2"
    if f"{PROTOTYPE[arch]}.weight" in state:
        return "phase1"
    return "baseline"


def reference_config(
    state: Mapping[str, Tensor], arch: str, model_cfg: Mapping | None = None
) -> dict:
    """The model entry that fits ``state``: ``model_cfg`` with the sizes the tensors give.

    N from the bases; DINet's E from its 1x1 encoder conv; SALICON's scale
    width from its shared conv; TranSalNet's token widths, depth and feature
    width from its encoders and decoder. A size the file contradicts is
    replaced (with a warning). Sizes that no tensor tells (the trunk's, the
    attention heads, the input size) stay as configured.
    """
    config = dict(model_cfg or {})
    config["arch"] = arch
    sizes: dict = {}
    prototype = state.get(f"{PROTOTYPE[arch]}.weight")
    if prototype is not None and prototype.ndim == 2:
        sizes["n_bases"] = int(prototype.shape[0])
    if arch == "dinet" and "encoder.inception_1.weight" in state:
        sizes["encoder_channels"] = int(state["encoder.inception_1.weight"].shape[0])
    if arch == "salicon" and "v_encoder.weight" in state:
        sizes["scale_channels"] = int(state["v_encoder.weight"].shape[0])
    if arch == "transalnet":
        dims = [state.get(f"trans_{t}.patch_encoder.projection.weight") for t in (3, 2, 1)]
        if all(d is not None for d in dims):
            sizes["transformer_dims"] = [int(d.shape[0]) for d in dims]
        depth = {k.split(".")[2] for k in state if k.startswith("trans_1.attention.")}
        if depth:
            sizes["transformer_layers"] = len(depth)
        if "sal_decoder_4.4.weight" in state:
            sizes["decoder_channels"] = int(state["sal_decoder_4.4.weight"].shape[0])
    for key, value in sizes.items():
        if key in config and _plain(config[key]) != value:
            log.warning("model config %s = %s; the checkpoint has %s", key, config[key], value)
        config[key] = value
    return config


def _plain(value):
    return list(value) if isinstance(value, tuple | list) else value


# ---------------------------------------------------------------- key mapping
def _rules(model: SaliencyModel, arch: str, phase: str) -> list[tuple[str, str]]:
    """(our module or parameter path, the reference's) pairs; a key maps by its longest rule."""
    if arch == "transalnet":
        rules = [("features.backbone", "backbone")]
    else:
        rules = [
            ("features.backbone.conv1", "dilated_backbone.0"),
            ("features.backbone.bn1", "dilated_backbone.1"),
        ]
        rules += [
            (f"features.backbone.layer{k}", f"dilated_backbone.{k + 3}") for k in (1, 2, 3, 4)
        ]
    layer = SALIENCY_LAYER[arch][phase]
    if phase == "phase2":
        rules.append(("reformulated", layer))
    else:
        rules.append(("readout", layer))
    if phase != "baseline":
        rules.append(("bases", PROTOTYPE[arch]))
    if arch == "dinet":
        rules.append(("features.reduce.0", "encoder.inception_1"))
        rules += [(f"features.branches.{i}.0", f"encoder.inception_{i + 2}") for i in range(3)]
        if phase == "baseline":
            rules += [
                ("features.decoder.0", "decoder.decoder_1"),
                ("plain_neck.0", "decoder.decoder_2"),
            ]
        else:
            rules.append(("features.decoder.0", "decoder.v_decoder"))
    elif arch == "salicon":
        rules.append(("features.encoder", "v_encoder"))
    else:
        for i, t in enumerate((3, 2, 1)):  # our encoders run at strides 8, 16, 32
            ours, theirs = f"features.encoders.{i}", f"trans_{t}"
            rules += [
                (f"{ours}.project", f"{theirs}.patch_encoder.projection"),
                (f"{ours}.position", f"{theirs}.patch_encoder.pos_embedding.weight"),
                (f"{ours}.norm", f"{theirs}.output_norm"),
            ]
            for n in range(len(model.features.encoders[i].layers)):
                rules += [
                    (f"{ours}.layers.{n}.norm1", f"{theirs}.norm_before.{n}"),
                    (f"{ours}.layers.{n}.attention", f"{theirs}.attention.{n}"),
                    (f"{ours}.layers.{n}.norm2", f"{theirs}.norm_after.{n}"),
                    (f"{ours}.layers.{n}.mlp.0", f"{theirs}.mlp.{n}.mlp.fc_1"),
                    (f"{ours}.layers.{n}.mlp.2", f"{theirs}.mlp.{n}.mlp.fc_2"),
                ]
        for ours, theirs in (("up32", 1), ("up16", 2), ("up8", 3), ("up4", 4)):
            rules += [(f"features.{ours}.{j}", f"sal_decoder_{theirs}.{j}") for j in (0, 1)]
        rules += [("features.out.0", "sal_decoder_4.4"), ("features.out.1", "sal_decoder_4.5")]
    return rules


def _kept(arch: str, phase: str) -> tuple[str, ...]:
    """Our parameters that a reference file of this phase cannot hold (prefixes)."""
    kept = ["offset"]
    if phase == "baseline":
        kept += ["bases.", "reformulated."]
    else:
        kept.append("plain_neck.")
        kept.append("reformulated." if phase == "phase1" else "readout.")
    return tuple(kept)


def key_map(model: SaliencyModel, arch: str, phase: str) -> dict[str, str]:
    """Our state-dict key -> the reference's, for every key the reference file must hold."""
    rules = sorted(_rules(model, arch, phase), key=lambda rule: -len(rule[0]))
    kept = _kept(arch, phase)
    mapping = {}
    for key in model.state_dict():
        if key == "offset" or key.startswith(kept):
            continue
        for ours, theirs in rules:
            if key == ours or key.startswith(ours + "."):
                mapping[key] = theirs + key[len(ours) :]
                break
        else:
            mapping[key] = f"<no reference name for {key}>"
    return mapping


def _to_ours(key: str, value: Tensor) -> Tensor:
    # nn.Embedding's (tokens, dim) table is our (1, tokens, dim) parameter
    return value.unsqueeze(0) if key.endswith(".position") else value


def _shape(value: Tensor) -> str:
    return str(tuple(value.shape))


def _listing(title: str, lines: list[str]) -> str:
    shown = lines[:LISTED] + (
        [f"... and {len(lines) - LISTED} more"] if len(lines) > LISTED else []
    )
    return f"  {len(lines)} {title}:\n" + "\n".join(f"    {line}" for line in shown)


def convert_state(
    state: Mapping[str, Tensor], model: SaliencyModel, arch: str, phase: str, source: str = ""
) -> tuple[dict[str, Tensor], list[str], list[str]]:
    """Our state dict for ``model`` from a reference one; (state, kept keys, ignored keys).

    Refuses, with one `ReferenceCheckpointError` listing each mismatch, a file
    with a key that has no place in the model, without a key the model needs,
    or with a tensor of another shape.
    """
    ours = model.state_dict()
    mapping = key_map(model, arch, phase)
    ignored = [k for k in state if k.startswith(IGNORED.get(arch, ()))]
    wanted = set(mapping.values())
    unexpected = [f"{k} {_shape(state[k])}" for k in state if k not in wanted and k not in ignored]
    missing, resized = [], []
    converted = dict(ours)
    for key, theirs in mapping.items():
        if theirs not in state:
            missing.append(f"{theirs} {_shape(ours[key])} (our {key})")
            continue
        value = _to_ours(key, state[theirs])
        if value.shape != ours[key].shape:
            resized.append(f"{theirs}: file {_shape(state[theirs])}, model {_shape(ours[key])}")
            continue
        converted[key] = value.to(ours[key].dtype)
    if missing or unexpected or resized:
        others = [a for a, key in SIGNATURE.items() if key in state and a != arch]
        found = detect_phase(state, arch)
        if others:
            hint = f" (it looks like a {others[0]} file)"
        else:
            hint = f" (it looks like a {found} file)" if found != phase else ""
        parts = [
            f"reference checkpoint {source or '<state dict>'} does not fit a {arch} {phase} "
            f"model{hint}:"
        ]
        if unexpected:
            parts.append(_listing("keys in the file have no place in the model", unexpected))
        if missing:
            parts.append(_listing("keys the model needs are not in the file", missing))
        if resized:
            parts.append(_listing("tensors of another shape", resized))
        raise ReferenceCheckpointError("\n".join(parts))
    kept = [k for k in ours if k not in mapping]
    return converted, kept, ignored


# ---------------------------------------------------------------- import
def build(config: Mapping, head: str, seed: int = 0) -> SaliencyModel:
    """Our model for a ``models:`` entry (a key of another architecture is refused),
    built with backbone weights ``none`` (the checkpoint replaces them) under ``seed``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return networks.build(networks.without_weights(config), head)


def load_reference(
    path: str | Path,
    arch: str = "auto",
    phase: str = "auto",
    model_cfg: Mapping | None = None,
    *,
    seed: int = 0,
) -> Imported:
    """Our model with the weights of a reference checkpoint at ``path``, in eval mode.

    ``arch`` (dinet, salicon, transalnet) and ``phase`` (baseline, phase1,
    phase2) default to what the file's keys say. ``model_cfg`` is a model entry
    as under ``models:`` in the config (``arch`` may be left out); its sizes are
    replaced by the file's (`reference_config`), its other options kept
    (``trunk``/``upsample`` other than the reference's are allowed but warned
    about: the model then computes something else). Our parameters the file
    cannot hold keep their initial values under ``seed`` (``Imported.kept``).
    """
    state = read_reference_state(path)
    if arch == "auto":
        arch = detect_arch(state)
    if arch not in ARCHS:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {list(ARCHS)}")
    if model_cfg and model_cfg.get("arch", arch) != arch:
        raise ValueError(f"model config is a {model_cfg['arch']}, the checkpoint a {arch}")
    if phase == "auto":
        phase = detect_phase(state, arch)
    if phase not in PHASES:
        raise ValueError(f"unknown phase {phase!r}; choose one of {list(PHASES)} or auto")
    config = reference_config(state, arch, model_cfg)
    for key, value in REFERENCE_OPTIONS.items():
        if config.get(key, value) != value:
            log.warning(
                "%s = %r: the imported model will not compute what the reference does (%r)",
                key,
                config[key],
                value,
            )
    head = HEADS[phase]
    model = build(config, head, seed)
    converted, kept, ignored = convert_state(state, model, arch, phase, str(path))
    model.load_state_dict(converted)
    return Imported(model.eval(), config, arch, phase, head, str(path), kept, ignored)


def save_imported(imported: Imported, path: str | Path) -> None:
    """Write our checkpoint format (as `saldissect.training.train.finish_training` writes
    ``model.pt``: model, meta, epoch, versions); ``epoch`` is -1 (not trained here)
    and ``meta["imported"]`` says where the weights came from."""
    meta = {
        "head": imported.head,
        "model": imported.config,
        "imported": {
            "source": imported.source,
            "arch": imported.arch,
            "phase": imported.phase,
            "kept": imported.kept,
            "ignored": imported.ignored,
        },
    }
    save_checkpoint(
        {
            "model": imported.model.state_dict(),
            "meta": meta,
            "epoch": -1,
            "versions": {"torch": str(torch.__version__)},
        },
        path,
    )


def basis_weights_frame(model: SaliencyModel):
    """The ``basis_weights`` table (basis, weight) of a phase-two model: kernel sums."""
    import numpy as np
    import pandas as pd

    weights = model.basis_weights().cpu().numpy().astype(np.float64)
    return pd.DataFrame({"basis": np.arange(len(weights)), "weight": weights})


# ---------------------------------------------------------------- command line
def _model_config(text: str | None, name: str | None) -> dict | None:
    """A model entry from a YAML file or inline YAML: the entry itself (it has
    ``arch``) or a config whose ``models:`` has ``name`` (or exactly one model)."""
    if text is None:
        return None
    import yaml

    candidate = Path(text)
    data = yaml.safe_load(candidate.read_text()) if candidate.is_file() else yaml.safe_load(text)
    if not isinstance(data, dict):
        raise SystemExit(f"--model-config {text}: neither a YAML file nor a YAML mapping")
    models = data.get("models")
    if isinstance(models, dict):
        if name is None and len(models) != 1:
            raise SystemExit(
                f"--model-config {text} has models {sorted(models)}: pick one with --model"
            )
        if name is not None and name not in models:
            raise SystemExit(f"--model-config {text} has no model {name!r}: {sorted(models)}")
        return dict(models[name] if name is not None else next(iter(models.values())))
    return data


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="saldissect-import",
        description="Import a checkpoint of the authors' reference code "
        "(github.com/szzexpoi/saliency_analysis: a bare state_dict of DINet, SALICON or "
        "TranSalNet) into saldissect's checkpoint format.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--arch",
        choices=("auto", *ARCHS),
        default="auto",
        help="architecture (default: from the keys)",
    )
    common.add_argument(
        "--phase",
        choices=("auto", *PHASES),
        default="auto",
        help="baseline (no factorisation), phase1 (factorised) or phase2 (reformulated); "
        "default: from the keys",
    )
    common.add_argument(
        "--model-config",
        metavar="YAML",
        help="our model entry: a YAML file (one entry with 'arch', or a config with 'models:', "
        "see --model) or inline YAML such as '{input_size: [480, 640]}'. Default: the "
        "paper's model. Sizes (N, E, ...) are always read from the checkpoint",
    )
    common.add_argument("--model", metavar="NAME", help="which entry of the config's models:")
    common.add_argument("--seed", type=int, default=0, help="seed of the parameters the file lacks")
    common.add_argument("input", type=Path, help="the reference checkpoint (.pth)")
    inspect_cmd = commands.add_parser(
        "inspect", parents=[common], help="say what a checkpoint holds and check that it imports"
    )
    inspect_cmd.set_defaults(output=None)
    convert = commands.add_parser(
        "convert", parents=[common], help="write it as a saldissect checkpoint (model.pt)"
    )
    convert.add_argument("output", type=Path, help="where to write our checkpoint")
    convert.add_argument(
        "--basis-weights",
        type=Path,
        metavar="PARQUET",
        help="phase two: also write basis_weights.parquet (basis, weight = kernel sums)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    import yaml

    try:
        imported = load_reference(
            args.input,
            args.arch,
            args.phase,
            _model_config(args.model_config, args.model),
            seed=args.seed,
        )
    except (CheckpointError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    entry = yaml.safe_dump(
        {"models": {imported.arch: imported.config}}, sort_keys=False, default_flow_style=None
    )
    print(
        f"{args.input}: {imported.arch} {imported.phase} (head {imported.head}), "
        f"{sum(p.numel() for p in imported.model.parameters())} parameters"
    )
    if imported.ignored:
        print(f"dropped (no counterpart): {', '.join(imported.ignored)}")
    print(f"left at their initial values: {', '.join(imported.kept)}")
    print(f"the model entry that fits it:\n{entry}", end="")
    if args.command == "convert":
        save_imported(imported, args.output)
        print(f"wrote {args.output}")
        if args.basis_weights:
            if imported.phase != "phase2":
                print("error: --basis-weights needs a phase-two checkpoint", file=sys.stderr)
                return 1
            from saldissect.core.io import write_parquet

            write_parquet(basis_weights_frame(imported.model), args.basis_weights, "basis_weights")
            print(f"wrote {args.basis_weights}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
