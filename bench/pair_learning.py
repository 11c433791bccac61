"""Does the interaction variant learn the planted pair? The planted pair's effect as
the world holds it, as phase two predicts it and as each interaction head predicts
it, on a finished run's probe images; and what predicting it would be worth.

    .venv/bin/python bench/pair_learning.py
    .venv/bin/python bench/pair_learning.py --readouts attended split --seeds 0 1

Every probe scene is drawn again (`saldissect.data.synthetic.scene`), so each
object's box and whether the pair boosted it are known exactly. Per object, the log
density contrast of a density map (log of its mean in the box over its mean over
the image) for the world's fixation density, phase two's saliency and each head's.
The pair effect is the source's contrast when boosted minus when not, less the
other objects' contrast with a target in the image minus without (a target takes
density from everything). A readout of the pair (docs/method.md 6) can only find
what a head carries. The last table adds the pair's boost to phase two's
prediction on the validation images by hand (density x exp(delta) on the boosted
pixels): the CC a head would gain by learning it.

Reads results/<dataset>/ of a finished `make run` (or of the run in ``--workdir``,
with its ``--configfile``); ``--readouts`` trains one more head per readout and seed
(`interaction.readout`) in a scratch folder.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as nnf
import yaml
from torch.utils.data import DataLoader

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from saldissect.analysis.dissection import ConceptIndex  # noqa: E402
from saldissect.core import metrics  # noqa: E402
from saldissect.core.config import load_schema, validate_config  # noqa: E402
from saldissect.core.io import read_parquet  # noqa: E402
from saldissect.data import synthetic  # noqa: E402
from saldissect.data.datasets import ImageDataset, read_saliency_map  # noqa: E402
from saldissect.interaction import interactions as inter  # noqa: E402
from saldissect.training.train import load_model  # noqa: E402


def contrast(density: np.ndarray, box) -> float:
    x, y, w, h = box
    return float(np.log(density[y : y + h, x : x + w].mean() / density.mean()))


def normalised(saliency: torch.Tensor, shape: tuple[int, int]) -> np.ndarray:
    """B x 1 x h x w saliency to B x H x W densities at the world's size."""
    saliency = nnf.interpolate(saliency.double(), size=shape, mode="bilinear", align_corners=False)
    saliency = saliency[:, 0].clamp_min(1e-12)
    return (saliency / saliency.sum((1, 2), keepdim=True)).numpy()


def boosted(world: dict, quiet: dict, split: str, index: int):
    """The scene, and per object whether the planted pair raised it."""
    scene = synthetic.scene(world, split, index)
    gain = synthetic.scene(quiet, split, index).value != scene.value
    flags = [
        bool(gain[y : y + h, x : x + w].any()) for x, y, w, h in (o["box"] for o in scene.objects)
    ]
    return scene, flags, gain


def object_rows(scene, flags, source: str, target: str, densities: dict) -> list[dict]:
    """One row per object of a scene (boxes of no area left out): its name, whether
    the pair boosted it, whether a target is in the image, and its box's `contrast`
    in each of ``densities`` (name -> H x W density)."""
    has_target = any(o["name"] == target for o in scene.objects)
    return [
        {
            "name": o["name"],
            "boosted": flag and o["name"] == source,
            "target_in_image": has_target,
            **{name: contrast(density, o["box"]) for name, density in densities.items()},
        }
        for o, flag in zip(scene.objects, flags, strict=True)
        if o["box"][2] * o["box"][3] > 0
    ]


def pair_table(rows: pd.DataFrame, columns: list[str], source: str, target: str) -> pd.DataFrame:
    src = rows[rows["name"] == source]
    others = rows[~rows["name"].isin([source, target])]
    table = []
    for column in columns:
        up, plain = src[src["boosted"]][column].mean(), src[~src["boosted"]][column].mean()
        near = others[others["target_in_image"]][column].mean()
        far = others[~others["target_in_image"]][column].mean()
        table.append(
            {
                "density": column,
                f"{source} boosted": up,
                f"{source} not": plain,
                "difference": up - plain,
                "others' difference": near - far,
                "pair effect": (up - plain) - (near - far),
            }
        )
    return pd.DataFrame(table)


@torch.no_grad()
def p_of_cells(frozen, probe: pd.DataFrame, data: Path, size, names: list[str]):
    """P at the grid cells covered by each named concept's boxes (docs/method.md 4.2)."""
    concepts = read_parquet(data / "concepts.parquet", "concepts")
    index = ConceptIndex(probe, concepts[concepts["concept"].isin(names)])
    vocabulary = list(index.vocabulary["concept"])
    values, labels = [], []
    for batch in DataLoader(ImageDataset(probe, size), batch_size=32):
        prob = frozen(batch["image"])["prob"].float()
        masks, present = index.batch_masks(batch["index"].numpy(), prob.shape[2:], 0.5, "cpu")
        cells = prob.flatten(2).transpose(1, 2)  # B x cells x N
        for j, concept in enumerate(present):
            chosen = masks[:, j].flatten(1).bool()
            values.append(cells[chosen])
            labels.append(torch.full((int(chosen.sum()),), names.index(vocabulary[concept])))
    return torch.cat(values), torch.cat(labels)


class Features(torch.nn.Module):
    """Phase one's features (before the bases) in place of P, for `separability`."""

    def __init__(self, model) -> None:
        super().__init__()
        self.model = model

    def forward(self, image):
        return {"prob": self.model.features(self.model.normalise(image))}


def separability(frozen, probe, data, size, source: str, target: str) -> tuple[float, float, int]:
    """Held-out accuracy of a logistic regression telling target cells from source cells."""
    with torch.enable_grad():
        x, y = p_of_cells(frozen, probe, data, size, [source, target])
        y = y.float()
        order = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
        fit, held = order[: len(y) // 2], order[len(y) // 2 :]
        torch.manual_seed(0)
        linear = torch.nn.Linear(x.shape[1], 1)
        optimiser = torch.optim.Adam(linear.parameters(), lr=0.05)
        for _ in range(500):
            optimiser.zero_grad()
            nnf.binary_cross_entropy_with_logits(linear(x[fit])[:, 0], y[fit]).backward()
            optimiser.step()
    right = ((linear(x[held])[:, 0] > 0).float() == y[held]).float().mean()
    share = float(y[held].mean())
    return float(right), max(share, 1 - share), len(y)


def run_arguments(parser: argparse.ArgumentParser) -> None:
    """Where the finished run is: ``--workdir``, ``--configfile``, ``--dataset``, ``--model``."""
    parser.add_argument("--workdir", type=Path, default=ROOT, help="where the run's results are")
    parser.add_argument(
        "--configfile", default="config/config.yaml", help="the run's, in --workdir"
    )
    parser.add_argument("--dataset", default="synthetic")
    parser.add_argument("--model", default="dinet_small")


def load_run(args):
    """Into the run's folder (its tables name files from there); its validated config,
    world, model, planted pair, and the world with the pair's boost set to 0 (the same
    draws). Exits when the world plants no pair."""
    os.chdir(args.workdir)
    schema = load_schema(ROOT / "workflow/schemas/config.schema.yaml")
    config = validate_config(yaml.safe_load(Path(args.configfile).read_text()), schema)
    world, model_cfg = config["synthetic"], config["models"][args.model]
    pair = world.get("interaction") or {}
    if not pair.get("source") or not pair.get("weight"):
        sys.exit("synthetic.interaction plants no pair: nothing to measure")
    quiet = {**world, "interaction": {**pair, "weight": 0.0}}
    return config, world, model_cfg, pair, quiet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    run_arguments(parser)
    parser.add_argument("--readouts", nargs="*", default=[], choices=list(inter.READOUTS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument(
        "--dim", type=int, default=None, help="the trained heads' dim (default: the config's)"
    )
    parser.add_argument(
        "--epochs", type=int, default=None, help="their epochs (default: the config's)"
    )
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    config, world, model_cfg, pair, quiet = load_run(args)
    source, target = pair["source"], pair["target"]
    run, data = Path("results", args.dataset, args.model), Path("results", args.dataset, "data")
    torch.set_num_threads(args.threads)
    device = torch.device("cpu")
    frozen = inter.load_frozen(model_cfg, run / "phase1/model.pt", device)
    phase2 = load_model(run / "phase2/model.pt", model_cfg, "reformulated", device)
    dim, size = config["interaction"]["dim"], tuple(model_cfg["input_size"])
    heads = {
        "interaction (the run's)": (
            inter.load_head(run / "interaction/model.pt", frozen.n_bases, dim, device),
            run / "interaction/history.parquet",
        )
    }
    trained = {**config["train"]["interaction"]}
    trained["epochs"] = args.epochs or trained["epochs"]
    dim_new = args.dim or dim
    scratch = tempfile.TemporaryDirectory()
    train = read_parquet(data / "train.parquet", "split")
    val = read_parquet(data / "val.parquet", "split")
    for readout in args.readouts:
        for seed in args.seeds:
            out = Path(scratch.name) / f"{readout}{seed}"
            inter.train_interaction(
                train,
                val,
                model_cfg,
                {**trained, "seed": seed},
                run / "phase1/model.pt",
                out,
                dim=dim_new,
                readout=readout,
                threads=args.threads,
                device="cpu",
            )
            heads[f"interaction ({readout}, seed {seed})"] = (
                inter.load_head(out / "model.pt", frozen.n_bases, dim_new, device),
                out / "history.parquet",
            )
    shape = (world["height"], world["width"])
    probe = read_parquet(data / "probe.parquet", "probe").reset_index(drop=True)
    rows = []
    with torch.no_grad():
        for batch in DataLoader(ImageDataset(probe, size), batch_size=32):
            prob = frozen(batch["image"])["prob"].float()
            maps = {"phase two": normalised(phase2.saliency_from_prob(prob, size), shape)}
            maps |= {name: normalised(head(prob, size), shape) for name, (head, _) in heads.items()}
            for b, row in enumerate(batch["index"].tolist()):
                index = int(probe.iloc[row]["image_id"]) - 1
                scene, flags, _ = boosted(world, quiet, "probe", index)
                truth = synthetic.fixation_density(scene.value, world)
                densities = {"world": truth, **{name: m[b] for name, m in maps.items()}}
                rows += object_rows(scene, flags, source, target, densities)
    rows = pd.DataFrame(rows)
    columns = ["world", "phase two", *heads]
    print(
        f"planted pair: {source} -> {target} (+{pair['weight']}, radius {pair['radius']}), "
        f"{args.dataset}/{args.model}, {len(probe)} probe images; "
        f"{int(rows['boosted'].sum())} of {int((rows['name'] == source).sum())} {source}s boosted"
    )
    print("\nLog density contrast of the source's box (per object; docs/method.md 6):\n")
    print(pair_table(rows, columns, source, target).to_markdown(index=False, floatfmt=".3f"))
    histories = {"phase two": run / "phase2/history.parquet"} | {
        n: h for n, (_, h) in heads.items()
    }
    cc = {
        name: float(pd.read_parquet(path).query("split == 'val'")["cc"].iloc[-1])
        for name, path in histories.items()
    }
    print("\nValidation CC at the last epoch: " + ", ".join(f"{n} {v:.4f}" for n, v in cc.items()))
    # what learning the pair would be worth: the boost laid on phase two's prediction
    deltas = (0.0, 1.0, 2.0, 3.0)
    scores = {d: [] for d in deltas}
    lifted = []
    with torch.no_grad():
        for batch in DataLoader(ImageDataset(val.reset_index(drop=True), size), batch_size=32):
            prob = frozen(batch["image"])["prob"].float()
            densities = normalised(phase2.saliency_from_prob(prob, size), shape)
            for b, row in enumerate(batch["index"].tolist()):
                entry = val.iloc[row]
                index = int(str(entry["image_id"]).rsplit("_", 1)[-1])
                _, _, gain = boosted(world, quiet, "val", index)
                gt = read_saliency_map(entry["map_path"])
                lifted.append(bool(gain.any()))
                for d in deltas:
                    scores[d].append(metrics.cc(densities[b] * np.exp(d * gain), gt))
    lifted = np.asarray(lifted)
    oracle = pd.DataFrame(
        {
            "delta": deltas,
            f"CC, {int(lifted.sum())} boosted images": [
                np.mean(np.asarray(scores[d])[lifted]) for d in deltas
            ],
            f"CC, all {len(lifted)}": [np.mean(scores[d]) for d in deltas],
        }
    )
    print("\nPhase two on the validation images with the pair's boost laid on by hand:\n")
    print(oracle.to_markdown(index=False, floatfmt=".4f"))
    on_p = separability(frozen, probe, data, size, source, target)
    on_features = separability(Features(frozen), probe, data, size, source, target)
    print(
        f"\nCells of {source} vs {target} boxes ({on_p[2]} cells of the probe images) told "
        "apart by a logistic regression (fit on half, scored on the other half; chance "
        f"{on_p[1]:.3f}): on P {on_p[0]:.3f}, on the features the bases are read from "
        f"{on_features[0]:.3f}. Attention scores cells by a bilinear form of P: a {source} "
        f"cell can single out {target} cells only as far as P tells them apart."
    )
    scratch.cleanup()


if __name__ == "__main__":
    main()
