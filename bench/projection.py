"""The full paper run, projected: every stage's memory and time for the three models.

Sizes of the paper's data (SALICON 10,000 train + 5,000 val, Visual Genome
108,077 probe images, about 2,000 concepts) and the effective configuration
of ``config/salicon.yaml`` go through `saldissect.training.resources.estimate`, the
function the workflow's rules ask a cluster with. Printed per rule and model:
host memory (``mem_mb``, what Slurm is asked for), the working set (on the GPU
for a GPU job), and the projected hours on one H200-class GPU and on a
16-core CPU node. The per-image seconds behind the hours are
`saldissect.training.resources.SECONDS_PER_IMAGE` (see its docstring); the memory
model is measured (a ``meta``-device pass per model).

    .venv/bin/python bench/projection.py
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml

from saldissect.core.config import load_schema, validate_config
from saldissect.training.resources import estimate

ROOT = Path(__file__).resolve().parents[1]
SIZES = {"train": 10_000, "val": 5_000, "probe": 108_077}
CONCEPTS = 2_000


def stages(config: dict) -> list[tuple[str, int, int, int]]:
    """(rule, batch, images per epoch, epochs) of every model stage of the paper run."""
    train, both = config["train"], SIZES["train"] + SIZES["val"]
    return [
        ("train_baseline", train["baseline"]["batch_size"], both, train["baseline"]["epochs"]),
        ("train_phase1", train["phase1"]["batch_size"], both, train["phase1"]["epochs"]),
        ("train_phase2", train["phase2"]["batch_size"], both, train["phase2"]["epochs"]),
        ("compute_thresholds", config["thresholds"]["batch_size"], SIZES["val"], 1),
        ("dissect_bases", config["dissection"]["batch_size"], SIZES["probe"], 1),
        ("evaluate_models", config["evaluation"]["batch_size"], SIZES["val"], 3),
        (
            "train_interaction",
            train["interaction"]["batch_size"],
            both,
            train["interaction"]["epochs"],
        ),
        ("analyse_interactions", config["interaction"]["batch_size"], SIZES["val"], 1),
    ]


def main() -> None:
    raw = yaml.safe_load((ROOT / "config/salicon.yaml").read_text())
    config = validate_config(raw, load_schema(ROOT / "workflow/schemas/config.schema.yaml"))
    rows = []
    for name, model in config["models"].items():
        for stage, batch, images, epochs in stages(config):
            common = dict(
                batch_size=batch,
                n_images=images,
                epochs=epochs,
                n_concepts=CONCEPTS,
                bootstrap=config["contributions"]["bootstrap"],
            )
            # frozen_maps auto: recompute on a GPU, the float16 cache on a CPU
            gpu = estimate(stage, model, gpu=True, frozen_maps="recompute", **common)
            cpu = estimate(stage, model, gpu=False, frozen_maps="disk", **common)
            rows.append(
                {
                    "model": name,
                    "rule": stage,
                    "GPU job: mem_mb": gpu["mem_mb"],
                    "GPU memory (GB)": round(gpu["device_mb"] / 1024, 1),
                    "H200 hours": round(gpu["runtime"] / 60, 1),
                    "CPU job: mem_mb": cpu["mem_mb"],
                    "16-core CPU hours": round(cpu["runtime"] / 60, 1),
                }
            )
    table = pd.DataFrame(rows)
    print(table.to_markdown(index=False))
    total = table.groupby("model")[["H200 hours", "16-core CPU hours"]].sum()
    print()
    print(total.to_markdown())
    print(
        f"\nall three models: {total['H200 hours'].sum():.0f} GPU hours, "
        f"{total['16-core CPU hours'].sum():.0f} CPU-node hours"
    )


if __name__ == "__main__":
    main()
