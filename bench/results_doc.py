"""docs/results.md from the stored bench outputs (bench/results/*.md).

Every measurement the project states lives in a record that `bench/record.py`
wrote (or, for runs older than it, a record that says where it was
transcribed from), with its command, date, commit and machine. This script
puts them in one document, section by section, with a line on what each
measures; it never edits a number. `tests/test_results_doc.py` fails when
docs/results.md is not what this script writes from the records.

    .venv/bin/python bench/results_doc.py            # writes docs/results.md
    .venv/bin/python bench/results_doc.py --check    # exit 1 if it is stale
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECORDS = ROOT / "bench/results"
DOCUMENT = ROOT / "docs/results.md"

#: (record, title, what it measures), in the document's order.
SECTIONS = [
    (
        "default_recovery",
        "Recovery on the default world (`make run`)",
        "The recovery table `make run` writes (`results/synthetic/tables/recovery.md`), with "
        "each row's status against `recovery.acceptance`.",
    ),
    (
        "pipeline_times",
        "The default pipeline's job times (`make run`)",
        "Every job's time from Snakemake's benchmarks of that `make run` (2-core CPU).",
    ),
    (
        "recovery_sweep",
        "Recovery on worlds the defaults were not tuned for (`make sweep`)",
        "The workflow's sweep target (`results/sweep/tables/recovery.md`, docs/method.md 8.7): "
        "rule `check_recovery` on other world seeds, permuted planted weights and a world with no "
        "planted pair, each with its own shuffled controls pooled into their mean. Per readout "
        "(the paper's top-k IoU, the contrast, the regression): Spearman of recovered vs planted "
        "weights, signs right (|weight| >= 0.3), each row's status against "
        "`recovery.acceptance`; the planted pair's rank by S and by the pair effect; the wrong "
        "signs by concept kind. One control is one draw from a null with standard deviation "
        "1/sqrt(n - 1) = 0.29 for 13 concepts.",
    ),
    (
        "recovery_settings",
        "The paper's readout under other settings",
        "How settings of the world and the training move the top-k IoU readout's recovery "
        "(measured with the bench script the sweep target replaced; `--set` is now the "
        "sweep's `--config`).",
    ),
    (
        "interactions",
        "The planted interaction over training seeds",
        "The interaction variant trained again with each seed on the default run's phase one "
        "(`bench/pair_seeds.py`): the planted pair's rank in its source's row of the paper's "
        "S and by the pair effect's z (docs/method.md 6), each with the row's strongest other "
        "entry, and the largest pair z of any pair.",
    ),
    (
        "pair_learning",
        "How much of the planted pair the interaction variant learns",
        "`bench/pair_learning.py` on the default run: the planted pair's effect on the "
        "source's log density contrast (boosted minus not, less the other objects' shift when "
        "a target is in the image) in the world's fixation density, in phase two's prediction "
        "and in each interaction head's (the run's, and heads trained again with each readout "
        "and seed); the CC that laying the boost on phase two's prediction by hand gains; and "
        "how well P, and the features the bases are read from, tell the source's cells from the "
        "target's. A readout of pairs (docs/method.md 6) finds only what a head learned.",
    ),
    (
        "pair_features",
        "Whether the features or the head keep the planted pair out",
        "`bench/pair_features.py` on the default run: interaction heads trained in a plain loop "
        "(the reference loss, the config's epochs and lr) on phase one's P, and on P with two "
        "more channels, the grid cells of the source's and the target's boxes; with the "
        "workflow's sigmoid output and with exp(logit), which does not saturate. The pair "
        "effect each learns is `pair_learning`'s, on the probe images, for 3 seeds; beside it "
        "the workflow's readout of pairs on the same head: the planted pair's z, its rank in "
        "the source's row and the largest z of any pair. (Records of this session marked "
        "`-dirty` had only other records uncommitted; `bench/record.py` no longer counts them.)",
    ),
    (
        "interactions_split",
        "The planted interaction with the split readout",
        "The same over the same 8 seeds with `interaction.readout: split` (docs/method.md 6), "
        "the option that lets context lift a cell above the cells it attends to.",
    ),
    (
        "pair_worlds",
        "The planted interaction on the sweep's worlds",
        "`bench/pair_worlds.sh`: `bench/pair_seeds.py` with training seed 0 on each sweep "
        "world's stored run (`--workdir results/sweep/<world>/work`), for both readouts: the "
        "planted pair's rank where one is planted, and the largest pair z of the world with "
        "none and of its two shuffled controls (the null the no-pair world is judged by).",
    ),
    (
        "interaction_memory",
        "Interaction analysis and training memory",
        "Peak memory of the attention over grid cells, bounded by `interaction.attention_mb`.",
    ),
    (
        "iou_speed",
        "Dissection kernel",
        "`dissection.iou` against a per-image/basis/concept loop, a vectorised numpy loop and one "
        "read of P, every counting path, on the CPU it ran on.",
    ),
    (
        "iou_speed_avx2",
        "Dissection kernel on an AVX2-only CPU",
        "The same, with oneDNN, torch, MKL, numpy and numba held to AVX2 (no AVX-512, no VNNI).",
    ),
    (
        "frozen_maps",
        "P for phase two: recompute or cache",
        "What `train.<phase>.frozen_maps: auto` chooses between, on the paper's models.",
    ),
    (
        "vg_index",
        "Visual Genome's index at full size",
        "Rule `prepare_data` on a generated Visual Genome JSON of the real size.",
    ),
    (
        "import_memory",
        "Importing a pysaliency dataset",
        "`bench/import_memory.py`: rule `import_dataset`'s function on pysaliency files of two "
        "sizes, written by pysaliency's own `to_hdf5`; the import streams one stimulus at a "
        "time, so its peak memory should stay flat with the number of stimuli.",
    ),
    (
        "paper_scale",
        "The paper-shaped run at N and 4N",
        "`bench/paper_scale.py`: the whole workflow on paper-shaped data at two sizes; every model "
        "rule's peak memory should stay flat (ratio <= 1.3) and its time at most 4.5x.",
    ),
    (
        "paper_scale_phase2",
        "train_phase2's memory at N and 4N, re-measured",
        "The one ratio above 1.3 in the run above, measured again.",
    ),
    (
        "projection",
        "The paper run, projected",
        "Every stage of the full paper run (three models, SALICON + Visual Genome) through the "
        "function the rules ask a cluster with.",
    ),
    (
        "performance",
        "Other speed and throughput figures",
        "Each ratio against a baseline timed in the same run.",
    ),
]


def read(path: Path) -> tuple[dict[str, str], str]:
    """A record's header (``key: value`` lines up to the first blank line) and body."""
    head, _, body = path.read_text().partition("\n\n")
    header = dict(line.split(": ", 1) for line in head.splitlines())
    for key in ("command", "date", "commit", "machine"):
        if key not in header:
            raise ValueError(f"{path}: the record has no {key}")
    return header, body.strip()


def document() -> str:
    known = {name for name, _, _ in SECTIONS}
    stored = {path.stem for path in RECORDS.glob("*.md")}
    if stored - known:
        raise ValueError(f"records without a section here: {sorted(stored - known)}")
    parts = [
        "# Results",
        "",
        "What the project measured, each with its command, date, commit and machine.",
        "Generated by `bench/results_doc.py` from `bench/results/*.md`; do not edit by",
        "hand: re-record the bench (`bench/record.py`) and regenerate.",
    ]
    for name, title, what in SECTIONS:
        if name not in stored:
            continue
        header, body = read(RECORDS / f"{name}.md")
        parts += ["", f"## {title}", "", what, ""]
        parts += [f"- {key}: {value}" for key, value in header.items()]
        parts += ["", body]
    return "\n".join(parts) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only say whether it is current")
    args = parser.parse_args()
    text = document()
    if args.check:
        current = DOCUMENT.is_file() and DOCUMENT.read_text() == text
        print("docs/results.md is current" if current else "docs/results.md is stale")
        sys.exit(0 if current else 1)
    DOCUMENT.write_text(text)
    print(f"wrote {DOCUMENT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
