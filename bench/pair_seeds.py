"""The planted pair over training seeds: the interaction variant trained again
with each seed on a finished run's frozen phase one, and the planted pair's rank
in its source's row by the paper's S and by the pair effect's z
(docs/method.md 6), with the row's strongest other entry.

    .venv/bin/python bench/pair_seeds.py --seeds 0 1 2 3 4 5 6 7

Reads results/<dataset>/ of a finished `make run` (phase one, phase two's basis
weights, thresholds, alignment, splits) and the config's planted pair, or those of
the run in ``--workdir`` with its ``--configfile`` (a sweep world's: ``--workdir
results/sweep/seed3/work --configfile world.yaml``); each head is trained in a
scratch folder and dropped. A world with no planted pair reports its largest pair z.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from saldissect.analysis.stages import read_basis_weights, read_thresholds  # noqa: E402
from saldissect.core.config import load_schema, validate_config  # noqa: E402
from saldissect.core.io import read_parquet  # noqa: E402
from saldissect.interaction import interactions as inter  # noqa: E402
from saldissect.recovery.recovery import pair_rank  # noqa: E402


def strongest_other(table: pd.DataFrame, source: str, target: str, column: str) -> str:
    row = table[(table["source"] == source) & (table["target"] != target)]
    row = row[row["target"] != source].dropna(subset=[column])
    best = row.loc[row[column].idxmax()]
    return f"{best['target']} {best[column]:.3g}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(8)))
    parser.add_argument(
        "--workdir",
        type=Path,
        default=ROOT,
        help="the finished run's folder, e.g. a sweep world's results/sweep/seed3/work",
    )
    parser.add_argument("--configfile", default="config/config.yaml", help="its config, there")
    parser.add_argument("--dataset", default="synthetic")
    parser.add_argument("--model", default="dinet_small")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--readout",
        choices=["attended", "split"],
        default=None,
        help="interaction.readout (default: the config's)",
    )
    args = parser.parse_args()
    os.chdir(args.workdir)  # the run's tables name its files from there
    schema = load_schema(ROOT / "workflow/schemas/config.schema.yaml")
    config = validate_config(yaml.safe_load(Path(args.configfile).read_text()), schema)
    model_cfg, cfg = config["models"][args.model], config["interaction"]
    pair = config["synthetic"]["interaction"]
    source, target = pair["source"], pair["target"]
    run = Path("results", args.dataset, args.model)
    data = Path("results", args.dataset, "data")
    torch.set_num_threads(args.threads)
    device = torch.device("cpu")
    frozen = inter.load_frozen(model_cfg, run / "phase1/model.pt", device)
    weights = read_basis_weights(run / "basis_weights.parquet")
    train, val = (
        read_parquet(data / "train.parquet", "split"),
        read_parquet(data / "val.parquet", "split"),
    )
    probe, concepts = (
        read_parquet(data / "probe.parquet", "probe"),
        read_parquet(data / "concepts.parquet", "concepts"),
    )
    alignment = read_parquet(run / "alignment.parquet", "alignment")
    size = tuple(model_cfg["input_size"])
    rows = []
    for seed in args.seeds:
        start = time.perf_counter()
        with tempfile.TemporaryDirectory() as scratch:
            history = inter.train_interaction(
                train,
                val,
                model_cfg,
                {**config["train"]["interaction"], "seed": seed},
                run / "phase1/model.pt",
                scratch,
                dim=cfg["dim"],
                readout=args.readout or cfg["readout"],
                threads=args.threads,
                device="cpu",
            )
            head = inter.load_head(Path(scratch) / "model.pt", frozen.n_bases, cfg["dim"], device)
        _, basis = inter.analyse(
            frozen,
            head,
            val,
            read_thresholds(run / "thresholds.parquet"),
            size,
            batch_size=cfg["batch_size"],
            attention_mb=cfg["attention_mb"],
            center_bias_sigma=None,
            device=device,
        )
        semantic = inter.semantic_from_alignment(
            basis,
            alignment,
            top_k=config["contributions"]["top_k"],
            score=config["contributions"]["score"],
        )
        effects = inter.pair_effects(
            frozen,
            head,
            weights,
            probe,
            concepts,
            size,
            min_cover=config["dissection"]["min_cover"],
            min_images=cfg["min_images"],
            batch_size=cfg["batch_size"],
            device=device,
        )
        table = inter.with_pair_effects(semantic, effects)
        val_cc = history[history["split"] == "val"]["cc"].iloc[-1]
        row = {"seed": seed, "val CC": val_cc}
        if source:  # a world with no planted pair has only its largest pair z
            by_s, size_s = pair_rank(table, source, target)
            by_z, size_z = pair_rank(table, source, target, "pair_z")
            chosen = table[(table["source"] == source) & (table["target"] == target)]
            row |= {
                "rank by S": f"{by_s:g} of {size_s}",
                "S's strongest other": strongest_other(table, source, target, "weight"),
                "rank by pair z": f"{by_z:g} of {size_z}",
                "pair z": float(chosen["pair_z"].iloc[0]),
                "pair z's strongest other": strongest_other(table, source, target, "pair_z"),
            }
        top = effects.loc[effects["pair_z"].idxmax()]
        row |= {
            "largest pair z (any pair)": f"{top['pair_z']:.2f} {top['source']}->{top['target']}",
            "seconds": time.perf_counter() - start,
        }
        rows.append(row)
        print(rows[-1], file=sys.stderr, flush=True)
    result = pd.DataFrame(rows)
    readout = args.readout or cfg["readout"]
    planted = f"{source} -> {target} (+{pair['weight']})" if source else "none"
    where = "" if args.workdir == ROOT else f"{args.workdir}: "
    print(
        f"planted pair: {planted}, {where}{args.dataset}/{args.model}, "
        f"interaction.readout {readout}"
    )
    print(result.to_markdown(index=False, floatfmt=".2f"))
    if source:
        first_s = int(result["rank by S"].str.startswith("1 of").sum())
        first_z = int(result["rank by pair z"].str.startswith("1 of").sum())
        print(
            f"\nfirst in its row: by S {first_s} of {len(result)}, "
            f"by pair z {first_z} of {len(result)}"
        )


if __name__ == "__main__":
    main()
