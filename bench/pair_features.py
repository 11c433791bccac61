"""Is it the features? Interaction heads trained on phase one's P, and on P with the
planted pair's true masks added, and the pair effect each one learns.

    .venv/bin/python bench/pair_features.py
    .venv/bin/python bench/pair_features.py --seeds 0 1 2 3 --epochs 40

`bench/pair_learning.py` finds that no interaction head learns the planted pair.
This separates the two things a head needs: features in which the source's
cells can single out the target's, and a head and output that can carry the
effect once they do. Each head (`saldissect.interaction.interactions.InteractionHead`,
``attended`` or ``split``) is trained on the training images in a plain loop
(Adam, one-cycle, the reference loss of `saldissect.training.train.saliency_loss`,
the config's ``train.interaction`` epochs, batch size and lr) on one of:

- ``P``: phase one's probability maps, as the workflow's head reads them;
- ``P + masks`` (``--features masks``): two more channels, the grid cells the source's and the
  target's boxes cover (at least half a cell), drawn from each scene again.

Its saliency is ``sigmoid(logit)`` as in the workflow, or ``exp(logit)`` (an
output that does not saturate; the loss max-normalises both). The pair effect
is `bench/pair_learning.py`'s, on the probe images: the source's log density
contrast boosted minus not, less the other objects' shift with a target in the
image. Beside it, the workflow's readout of pairs on each head
(`saldissect.interaction.interactions.pair_effects`, docs/method.md 6): the planted
pair's Welch z, its rank in the source's row by it, and the largest pair z of any
pair: whether the readout finds the pair once a head carries it. Reads
results/<dataset>/ of a finished `make run` (or ``--workdir``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as nnf
from pair_learning import boosted, load_run, normalised, object_rows, pair_table, run_arguments
from torch.utils.data import DataLoader
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from saldissect.analysis.dissection import coverage_masks  # noqa: E402
from saldissect.analysis.stages import read_basis_weights  # noqa: E402
from saldissect.core.io import read_parquet  # noqa: E402
from saldissect.data import synthetic  # noqa: E402
from saldissect.data.datasets import ImageDataset, SaliencyDataset  # noqa: E402
from saldissect.interaction import interactions as inter  # noqa: E402
from saldissect.recovery.recovery import pair_rank  # noqa: E402
from saldissect.training.train import batch_cc, saliency_loss  # noqa: E402

#: ``--features`` choices and the rows they label
FEATURES = {"P": "P", "masks": "P + masks"}


def pair_masks(scene, names: tuple[str, str], grid) -> torch.Tensor:
    """2 x h x w: the cells the source's and the target's boxes cover in one scene."""
    boxes = [
        np.asarray([o["box"] for o in scene.objects if o["name"] == name], np.float32)
        for name in names
    ]
    masks = torch.zeros(2, *grid)
    present = [k for k, b in enumerate(boxes) if len(b)]
    if present:
        masks[present] = coverage_masks(
            [boxes[k] for k in present], scene.value.shape, grid, 0.5
        ).float()
    return masks


@torch.no_grad()
def inputs(frozen, table, size, scenes, names, maps: bool = True):
    """P, the pair's masks (from ``scenes``, one per row of ``table``), and with
    ``maps`` the saliency maps and fixations at the input size, for every image."""
    dataset = SaliencyDataset(table, size) if maps else ImageDataset(table, size)
    prob, masks, gt, fixations = [], [], [], []
    for batch in DataLoader(dataset, batch_size=32):
        p = frozen(batch["image"])["prob"].float()
        prob.append(p)
        masks += [pair_masks(sc, names, p.shape[2:]) for sc in scenes[len(masks) :][: len(p)]]
        if maps:
            gt.append(batch["map"])
            fixations.append(batch["fixations"])
    out = {"prob": torch.cat(prob), "masks": torch.stack(masks)}
    if maps:
        out |= {"map": torch.cat(gt), "fixations": torch.cat(fixations)}
    return out


def saliency(head, bias, features: torch.Tensor, output: str, size) -> torch.Tensor:
    logit = head.logit(features) + bias
    if output == "exp":  # exp(logit) up to a constant, which max-normalising removes
        map_ = torch.exp(logit - logit.flatten(1).amax(1).view(-1, 1, 1, 1))
    else:
        map_ = torch.sigmoid(logit)
    return nnf.interpolate(map_, size=size, mode="bilinear", align_corners=False)


def train_head(data, features: str, readout: str, output: str, seed: int, cfg, dim, size):
    torch.manual_seed(seed)
    x = feature_stack(data["train"], features)
    head = inter.InteractionHead(x.shape[1], dim=dim, readout=readout)
    bias = torch.nn.Parameter(torch.zeros(()))
    optimiser = torch.optim.Adam([*head.parameters(), bias], lr=cfg["lr"])
    batch, epochs = cfg["batch_size"], cfg["epochs"]
    steps = epochs * (len(x) // batch)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, cfg["lr"], total_steps=steps)
    maps, fixations = data["train"]["map"], data["train"]["fixations"]
    for _ in range(epochs):
        order = torch.randperm(len(x))
        for start in range(0, len(x) - batch + 1, batch):
            rows = order[start : start + batch]
            pred = saliency(head, bias, x[rows], output, size)
            loss, _ = saliency_loss(pred, maps[rows], fixations[rows])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
    return head.eval(), bias.detach()


def feature_stack(split: dict, features: str) -> torch.Tensor:
    if features == "P":
        return split["prob"]
    return torch.cat([split["prob"], split["masks"]], 1)


class WithMasks(torch.nn.Module):
    """Phase one whose P comes with the probe images' pair masks appended, for
    `inter.pair_effects`, which reads the probe images in order, one batch a call."""

    def __init__(self, frozen, masks: torch.Tensor | None) -> None:
        super().__init__()
        self.frozen, self.masks, self.done = frozen, masks, 0

    def forward(self, image):
        prob = self.frozen(image)["prob"]
        if self.masks is None:
            return {"prob": prob}
        masks = self.masks[self.done : self.done + len(image)]
        self.done += len(image)
        return {"prob": torch.cat([prob, masks], 1)}


class Logit(torch.nn.Module):
    """A trained head as `inter.pair_effects` reads it: a logit whose sigmoid is its
    density (an exp head's logit lowered by 30 below its maximum, where sigmoid = exp
    to 1e-13)."""

    def __init__(self, head, bias, output: str) -> None:
        super().__init__()
        self.head, self.bias, self.output = head, bias, output

    def logit(self, prob):
        logit = self.head.logit(prob) + self.bias
        if self.output == "exp":
            logit = logit - logit.flatten(1).amax(1).view(-1, 1, 1, 1) - 30
        return logit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    run_arguments(parser)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--features",
        nargs="+",
        default=list(FEATURES),
        choices=list(FEATURES),
        metavar="F",
        help="P: phase one's maps alone; masks: with the pair's masks added (default: both)",
    )
    parser.add_argument("--epochs", type=int, default=None, help="default: the config's")
    parser.add_argument("--dim", type=int, default=None, help="default: the config's")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    config, world, model_cfg, pair, quiet = load_run(args)
    names = (pair["source"], pair["target"])
    cfg = {**config["train"]["interaction"]}
    cfg["epochs"] = args.epochs or cfg["epochs"]
    dim, size = args.dim or config["interaction"]["dim"], tuple(model_cfg["input_size"])
    torch.set_num_threads(args.threads)
    run, folder = Path("results", args.dataset, args.model), Path("results", args.dataset, "data")
    frozen = inter.load_frozen(model_cfg, run / "phase1/model.pt", torch.device("cpu"))
    tables = {s: read_parquet(folder / f"{s}.parquet", "split") for s in ("train", "val")}
    tables["probe"] = read_parquet(folder / "probe.parquet", "probe").reset_index(drop=True)
    begin = time.perf_counter()
    probed = [boosted(world, quiet, "probe", int(i) - 1) for i in tables["probe"]["image_id"]]
    scenes = {
        split: [synthetic.scene(world, split, i) for i in range(len(tables[split]))]
        for split in ("train", "val")
    }
    scenes["probe"] = [scene for scene, _, _ in probed]
    data = {
        s: inputs(frozen, t, size, scenes[s], names, maps=s != "probe") for s, t in tables.items()
    }
    print(
        f"P and masks of {sum(len(t) for t in tables.values())} images: "
        f"{time.perf_counter() - begin:.0f} s"
    )
    truths = [synthetic.fixation_density(scene.value, world) for scene in scenes["probe"]]
    concepts = read_parquet(folder / "concepts.parquet", "concepts")
    weights = read_basis_weights(run / "basis_weights.parquet")
    extra = torch.zeros(2, dtype=weights.dtype)  # phase two reads P alone
    variants = [
        (f, r, o)
        for f in (FEATURES[name] for name in args.features)
        for r, o in (("attended", "sigmoid"), ("split", "sigmoid"), ("split", "exp"))
    ]
    rows = []
    for (features, readout, output), seed in tqdm(
        [(v, s) for v in variants for s in args.seeds], desc="heads", unit="head"
    ):
        head, bias = train_head(data, features, readout, output, seed, cfg, dim, size)
        with torch.no_grad():
            cc = batch_cc(
                saliency(head, bias, feature_stack(data["val"], features), output, size),
                data["val"]["map"],
            ).mean()
            shape = (world["height"], world["width"])
            pred = saliency(head, bias, feature_stack(data["probe"], features), output, shape)
            density = normalised(pred, shape)
        objects = []
        for (scene, flags, _), truth, head_density in zip(probed, truths, density, strict=True):
            objects += object_rows(scene, flags, *names, {"world": truth, "head": head_density})
        effects = pair_table(pd.DataFrame(objects), ["world", "head"], *names)["pair effect"]
        masked = features != "P"
        readout_table = inter.pair_effects(
            WithMasks(frozen, data["probe"]["masks"] if masked else None),
            Logit(head, bias, output),
            torch.cat([weights, extra]) if masked else weights,
            tables["probe"],
            concepts,
            size,
            min_cover=config["dissection"]["min_cover"],
            min_images=config["interaction"]["min_images"],
            batch_size=config["interaction"]["batch_size"],
            device=torch.device("cpu"),
        )
        rank, length = pair_rank(readout_table, *names, "pair_z")
        largest = readout_table.dropna(subset=["pair_z"]).nlargest(1, "pair_z").iloc[0]
        rows.append(
            {
                "features": features,
                "readout": readout,
                "output": output,
                "seed": seed,
                "world's pair effect": effects.iloc[0],
                "pair effect learned": effects.iloc[1],
                "val CC": float(cc),
                "pair z": float(
                    readout_table.query("source == @names[0] and target == @names[1]")[
                        "pair_z"
                    ].iloc[0]
                ),
                "rank by pair z": f"{rank:g} of {length}",
                "largest pair z": f"{largest.pair_z:.2f} ({largest.source} -> {largest.target})",
            }
        )
    results = pd.DataFrame(rows)
    print(
        f"\nplanted pair {names[0]} -> {names[1]} (+{pair['weight']}), {args.dataset}/"
        f"{args.model}, {cfg['epochs']} epochs, dim {dim}; pair effect on "
        f"{len(probed)} probe images\n"
    )
    print(results.to_markdown(index=False, floatfmt=".3f"))
    summary = results.groupby(["features", "readout", "output"], sort=False).agg(
        learned_mean=("pair effect learned", "mean"),
        learned_min=("pair effect learned", "min"),
        learned_max=("pair effect learned", "max"),
        val_cc=("val CC", "mean"),
        first_by_pair_z=("rank by pair z", lambda r: int((r.str.split().str[0] == "1").sum())),
    )
    print(f"\nOver seeds {', '.join(map(str, args.seeds))}:\n")
    print(summary.reset_index().to_markdown(index=False, floatfmt=".3f"))


if __name__ == "__main__":
    main()
