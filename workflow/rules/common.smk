# Config validation and every input function used by the rules.
import os
import re
import sys
from functools import lru_cache
from pathlib import Path
from types import SimpleNamespace

import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import update_config

# The workflow runs the library of its own checkout (src/), here and in every
# job's script: with or without `pip install -e .`, and inside the conda
# environment of --use-conda, which holds the dependencies only.
_SOURCE = str(Path(workflow.basedir) / "src")
sys.path.insert(0, _SOURCE)
os.environ.update(
    PYTHONPATH=os.pathsep.join([_SOURCE, *filter(None, [os.environ.get("PYTHONPATH")])])
)

from saldissect.core.config import ConfigError, load_schema, validate_config

# The configuration is what --configfile and --config give, on top of one base.
# Without `preset:` the base is the embedded default, config/config.yaml (the
# synthetic world, CPU-sized), and datasets or models given replace its own
# instead of joining them. With `preset: paper` (config/salicon.yaml) there is
# no base: every key not given takes the schema's default, the paper's value,
# so no synthetic CPU tuning leaks into a paper run.
if "preset" not in config:
    with open(Path(workflow.basedir) / "config/config.yaml") as _handle:
        _base = yaml.safe_load(_handle)
    for _key in ("datasets", "models"):
        if _key in config:
            _base.pop(_key)
    update_config(_base, config)
    config.clear()
    config.update(_base)

try:
    _validated = validate_config(
        config,
        load_schema(Path(workflow.basedir) / "workflow/schemas/config.schema.yaml"),
    )
except ConfigError as error:
    raise WorkflowError(str(error)) from None
config.clear()
config.update(_validated)

DATASETS = sorted(config["datasets"])
MODELS = sorted(config["models"])
WORLD = "results/world"


def _check_plugins():
    """Networks from outside the package are built once here, on a zero image
    (saldissect.models.plugins): a bad one stops the run in one line, before any job."""
    from saldissect.core.errors import UserError
    from saldissect.models.networks import build

    for name, entry in config["models"].items():
        if entry["arch"] in ("module", "torchvision"):
            try:
                build(entry, "factorised")
            except UserError as error:
                raise WorkflowError(f"models.{name}: {error}") from None


_check_plugins()


def config_error(message):
    raise WorkflowError(f"config: {message}")


def is_control(dataset):
    return config["datasets"][dataset]["shuffle_maps"]


def chosen_datasets(section):
    """The datasets a section names; [] means every dataset but shuffled controls."""
    chosen = config[section]["datasets"] or [d for d in DATASETS if not is_control(d)]
    unknown = sorted(set(chosen) - set(DATASETS))
    if unknown:
        config_error(
            f"{section}.datasets names {unknown}, which are not configured "
            f"datasets ({', '.join(DATASETS)})"
        )
    return sorted(chosen)


SEEDS = sorted(config["replicates"]["seeds"])
SEED_DATASETS = chosen_datasets("replicates") if SEEDS else []
SNAPSHOTS = sorted(config["progressive"]["epochs"])
PROGRESSIVE_DATASETS = chosen_datasets("progressive") if SNAPSHOTS else []
TRAINING_DATASETS = sorted(config["training_data"]["datasets"] or DATASETS)
if config["seed"] in SEEDS:
    config_error(
        f"replicates.seeds repeats the top-level seed {config['seed']} (the main run)"
    )
if SNAPSHOTS and SNAPSHOTS[-1] >= config["train"]["phase1"]["epochs"]:
    config_error(
        f"progressive.epochs {SNAPSHOTS} must be below train.phase1.epochs "
        f"({config['train']['phase1']['epochs']}); the final model is the last point"
    )
if config["training_data"]["datasets"] and (
    set(TRAINING_DATASETS) - set(DATASETS) or len(TRAINING_DATASETS) == 1
):
    config_error(
        f"training_data.datasets {TRAINING_DATASETS} must name at least two of the "
        f"configured datasets ({', '.join(DATASETS)})"
    )


def shuffle_seed(dataset):
    """A control's seed: its permutation and its models' training (default: the top-level seed)."""
    return config["datasets"][dataset].get("shuffle_seed", config["seed"])


_shuffles = {}
for _name, _dataset in config["datasets"].items():
    if "shuffle_seed" in _dataset and not _dataset["shuffle_maps"]:
        config_error(f"datasets.{_name}.shuffle_seed is set but shuffle_maps is false")
    if _dataset["shuffle_maps"]:
        _key = (
            _dataset["source"],
            _dataset.get("salicon")
            or _dataset.get("stimuli")
            or _dataset.get("folder"),
            shuffle_seed(_name),
        )
        if _key in _shuffles:
            config_error(
                f"datasets.{_name} and datasets.{_shuffles[_key]} shuffle the same data "
                f"with the same seed ({_key[2]}); give one of them another shuffle_seed"
            )
        _shuffles[_key] = _name
if (
    config["failures"]["metric"] == "ig"
    and not config["evaluation"]["information_gain"]
):
    config_error("failures.metric ig needs evaluation.information_gain: true")
if config["failures"]["variant"] not in config["evaluation"]["variants"]:
    config_error(
        f"failures.variant {config['failures']['variant']} is not one of "
        f"evaluation.variants {config['evaluation']['variants']}"
    )

# Models whose checkpoints are imported (models.<m>.checkpoints, the reference
# code's files): those phases are not trained, and the model has no seed
# replicates or phase-one snapshots (they would be trained models of our own).
IMPORTED = {m: config["models"][m].get("checkpoints", {}) for m in MODELS}
TRAINED_MODELS = [m for m in MODELS if not IMPORTED[m]]
for _model, _checkpoints in IMPORTED.items():
    if _checkpoints and "phase1" not in _checkpoints:
        config_error(
            f"models.{_model}.checkpoints names {sorted(_checkpoints)} but not phase1, "
            "which every analysis reads"
        )

# Every run: each configured model, and for trained ones their seed replicates
# ({model}.seed<s>) and phase-one snapshots ({model}.epoch<e>, which share the
# model's phase one).
RUNS = {m: {"model": m, "seed": config["seed"], "epoch": None} for m in MODELS}


def _sweep_worlds():
    from saldissect.recovery.sweep import world_names

    return world_names(config["sweep"])


#: The worlds of the recovery sweep (rule sweep, saldissect.recovery.sweep).
SWEEP_WORLDS = _sweep_worlds()


def get_sweep_config():
    """What a world of the sweep is made from: the whole configuration but the list
    of worlds (adding a world does not rerun the others)."""
    settings = {k: v for k, v in config.items() if k != "sweep"}
    return {**settings, "sweep": {"controls": config["sweep"]["controls"]}}


for _model in TRAINED_MODELS:
    for _seed in SEEDS:
        RUNS[f"{_model}.seed{_seed}"] = {"model": _model, "seed": _seed, "epoch": None}
    for _epoch in SNAPSHOTS:
        RUNS[f"{_model}.epoch{_epoch}"] = {
            "model": _model,
            "seed": config["seed"],
            "epoch": _epoch,
        }


def _alternatives(runs):
    """A regex matching exactly these runs (one that matches nothing when empty)."""
    runs = sorted(runs, key=len, reverse=True)
    return "|".join(re.escape(r) for r in runs) if runs else "(?!)"


def runs_trained(phase):
    """The model wildcard of a training rule: runs whose ``phase`` is not imported."""
    return _alternatives(
        r for r, run in RUNS.items() if phase not in IMPORTED[run["model"]]
    )


def runs_imported(phase):
    return _alternatives(
        r for r, run in RUNS.items() if phase in IMPORTED[run["model"]]
    )


def has_interactions(model):
    """Whether a model gets the interaction variant: unless interaction.enabled is
    false, and for imported models only with checkpoints.interaction: train."""
    if not config["interaction"]["enabled"]:
        return False
    return not IMPORTED[model] or IMPORTED[model].get("interaction") == "train"


def imported_runs_and_phases():
    """The {imported} wildcard of the import_checkpoint rule, "<run>/<phase>", for every
    imported baseline and phase one (phase two has a rule of its own)."""
    return _alternatives(
        f"{run}/{phase}"
        for run, entry in RUNS.items()
        for phase in ("baseline", "phase1")
        if phase in IMPORTED[entry["model"]]
    )


def _imported(wildcards):
    """(run, phase) of rule import_checkpoint's {imported} wildcard."""
    path = Path(wildcards.imported)
    return str(path.parent), path.name


def get_imported_phase(wildcards):
    return _imported(wildcards)[1]


def get_imported_model_config(wildcards):
    return config["models"][RUNS[_imported(wildcards)[0]]["model"]]


def get_imported_file(wildcards):
    run, phase = _imported(wildcards)
    return IMPORTED[RUNS[run]["model"]][phase]


def get_imported_checkpoint(phase):
    def checkpoint(wildcards):
        return IMPORTED[RUNS[wildcards.model]["model"]][phase]

    return checkpoint


wildcard_constraints:
    dataset="|".join(DATASETS),
    model="|".join(re.escape(run) for run in sorted(RUNS, key=len, reverse=True)),


def is_synthetic(dataset):
    return config["datasets"][dataset]["source"] == "synthetic"


# Sources that rule import_dataset writes into the SALICON layout first, and the
# keys naming their raw files.
IMPORTED_SOURCES = ("pysaliency", "mit1003", "cat2000")
IMPORTED_FILES = ("stimuli", "fixations", "val_stimuli", "val_fixations", "folder")


def is_imported(dataset):
    return config["datasets"][dataset]["source"] in IMPORTED_SOURCES


def imported_layout(dataset):
    return f"results/{dataset}/import/salicon"


def get_import_config(wildcards):
    """What import_dataset reads: the dataset's source keys, the split's defaults filled."""
    dataset = config["datasets"][wildcards.dataset]
    keys = ("source", *IMPORTED_FILES, "blur")
    return {
        **{key: dataset[key] for key in keys if key in dataset},
        "val_fraction": dataset.get("val_fraction", 0.2),
        "split_seed": dataset.get("split_seed", 0),
    }


def get_import_manifest(wildcards):
    """The imported dataset's raw files, summarised (changed files rerun the import)."""
    cfg = get_import_config(wildcards)
    return _manifest(*sorted(cfg[key] for key in IMPORTED_FILES if key in cfg))


def pick(section, *keys):
    """Only ``keys`` of a config section: a rule's params hold what it uses, so
    that changing an unrelated key (a rerun trigger) does not rerun its jobs."""
    return {key: section[key] for key in keys}


def get_shuffle(wildcards):
    """The control settings of a dataset that prepare_data applies."""
    dataset = config["datasets"][wildcards.dataset]
    return {k: dataset[k] for k in ("shuffle_maps", "shuffle_seed") if k in dataset}


@lru_cache
def _manifest(*roots):
    """Files, bytes and a digest of (path, size, mtime) under ``roots`` (folders or files)."""
    import hashlib

    digest, files, size = hashlib.sha1(), 0, 0
    for root in roots:
        if os.path.isfile(root):
            stat = os.stat(root)
            digest.update(f"{root}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
            files, size = files + 1, size + stat.st_size
            continue
        for folder, names, filenames in os.walk(root):
            names.sort()  # walks the subfolders in name order
            for name in sorted(filenames):
                path = os.path.join(folder, name)
                stat = os.stat(path)
                digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
                files, size = files + 1, size + stat.st_size
    return f"{files} files, {size} bytes, sha1 {digest.hexdigest()[:16]}"


def get_data_manifest(wildcards):
    """A real dataset's raw files, summarised: a param of prepare_data, so that
    changed data (a file added, removed, resized or touched) reruns it. The
    synthetic world is an input of its own."""
    if is_synthetic(wildcards.dataset):
        return ""
    paths = get_dataset_paths(wildcards)
    # an imported layout is an input of its own (import_dataset tracks the raw files)
    kinds = ("probe", "probe_images", "val_scene_graphs")
    roots = {
        paths[k]
        for k in kinds + (() if is_imported(wildcards.dataset) else ("salicon",))
    }
    return _manifest(*sorted(r for r in roots if r and os.path.isdir(r)))


def get_model_config(wildcards):
    return config["models"][RUNS[wildcards.model]["model"]]


def get_run_seed(wildcards):
    """The run's training seed; a control with its own shuffle_seed trains with it
    too (its seed replicates keep theirs), so pooled controls differ in both."""
    run = RUNS[wildcards.model]
    if run["seed"] == config["seed"] and is_control(wildcards.dataset):
        return shuffle_seed(wildcards.dataset)
    return run["seed"]


def get_phase1_checkpoint(wildcards):
    """Phase one of a run; a snapshot run reads its model's checkpoint of that epoch."""
    run = RUNS[wildcards.model]
    if run["epoch"] is None:
        return f"results/{wildcards.dataset}/{wildcards.model}/phase1/model.pt"
    return f"results/{wildcards.dataset}/{run['model']}/phase1/epoch{run['epoch']}.pt"


def get_bootstrap_settings():
    """What the dissection's bootstrap needs (other contribution keys do not rerun it)."""
    return {k: config["contributions"][k] for k in ("bootstrap", "top_k", "score")}


def get_snapshot_outputs():
    return expand(
        "results/{{dataset}}/{{model}}/phase1/epoch{epoch}.pt", epoch=SNAPSHOTS
    )


def get_dataset_inputs(wildcards):
    """The synthetic world is itself an output; real data is checked by prepare_data."""
    if is_synthetic(wildcards.dataset):
        return {
            "salicon": f"{WORLD}/salicon",
            "visual_genome": f"{WORLD}/visual_genome",
            "visual_genome_val": f"{WORLD}/visual_genome_val",
        }
    if is_imported(wildcards.dataset):
        return {"salicon": imported_layout(wildcards.dataset)}
    return {}


def get_dataset_paths(wildcards):
    """Where prepare_data reads the saliency data and the probe scene graphs."""
    dataset = config["datasets"][wildcards.dataset]
    if is_synthetic(wildcards.dataset):
        return {
            "salicon": f"{WORLD}/salicon",
            "probe": f"{WORLD}/visual_genome",
            "scene_graphs": "visual_genome",
            "probe_images": None,
            "val_scene_graphs": f"{WORLD}/visual_genome_val",
        }
    default_val = (
        dataset["probe"]
        if dataset["scene_graphs"] == "visual_genome"
        and not is_imported(wildcards.dataset)
        else None
    )
    return {
        "salicon": (
            imported_layout(wildcards.dataset)
            if is_imported(wildcards.dataset)
            else dataset["salicon"]
        ),
        "probe": dataset["probe"],
        "scene_graphs": dataset["scene_graphs"],
        "probe_images": dataset.get("probe_images"),
        "val_scene_graphs": dataset.get("val_scene_graphs", default_val),
    }


VARIANTS = config["evaluation"]["variants"]


def get_largest_batch():
    """A split must hold at least one batch of every training phase."""
    phases = ["phase1", "phase2"] + (["baseline"] if "baseline" in VARIANTS else [])
    return max(config["train"][phase]["batch_size"] for phase in phases)


def get_evaluation_checkpoints(wildcards):
    """The model.pt of every variant scored (baseline, phase1, phase2)."""
    base = f"results/{wildcards.dataset}/{wildcards.model}"
    return {variant: f"{base}/{variant}/model.pt" for variant in VARIANTS}


def get_dataset_runs(wildcards, name):
    """One artifact per model of a dataset."""
    return [f"results/{wildcards.dataset}/{model}/{name}" for model in MODELS]


def get_dataset_contributions(wildcards):
    return get_dataset_runs(wildcards, "contributions.parquet")


def get_dataset_categories(wildcards):
    return get_dataset_runs(wildcards, "categories.parquet")


def get_dataset_metrics(wildcards):
    return get_dataset_runs(wildcards, "metrics.parquet")


def get_dataset_image_scores(wildcards):
    return get_dataset_runs(wildcards, "image_scores.parquet")


def recovery_datasets():
    """Synthetic datasets that are not controls: their recovery is checked."""
    return [d for d in DATASETS if is_synthetic(d) and not is_control(d)]


def seed_runs(dataset):
    """The seed replicates of every model on ``dataset``."""
    if dataset not in SEED_DATASETS:
        return []
    return [f"{m}.seed{s}" for m in TRAINED_MODELS for s in SEEDS]


def synthetic_runs():
    """(dataset, run) of every synthetic run: the shuffled controls and the seed
    replicates included."""
    return [(d, m) for d in DATASETS if is_synthetic(d) for m in MODELS + seed_runs(d)]


def get_recovery_runs(wildcards):
    return [f"results/{d}/{m}/contributions.parquet" for d, m in synthetic_runs()]


def get_recovery_interactions(wildcards):
    """Semantic interactions of the main synthetic runs: the planted pair's rank."""
    return [
        f"results/{d}/{m}/semantic_interactions.parquet"
        for d, m in synthetic_runs()
        if m in MODELS and has_interactions(m)
    ]


def get_interaction_outputs():
    """Interaction analyses and heatmaps of every run (docs/method.md 6)."""
    outputs = []
    for dataset in DATASETS:
        for model in filter(has_interactions, MODELS):
            base = f"results/{dataset}/{model}"
            outputs += [
                f"{base}/interaction_alignment.parquet",
                f"{base}/basis_interactions.parquet",
                f"{base}/semantic_interactions.parquet",
            ]
    return outputs


def get_recovery_labels(wildcards):
    return [
        {
            "dataset": d,
            "model": m,
            "control": is_control(d),
            "semantic": (
                f"results/{d}/{m}/semantic_interactions.parquet"
                if m in MODELS and has_interactions(m)
                else None
            ),
        }
        for d, m in synthetic_runs()
    ]


# ------------------------------------------------------- extended analyses
def get_failure_scores(wildcards):
    return f"results/{wildcards.dataset}/{wildcards.model}/image_scores.parquet"


def get_progressive_runs(wildcards):
    """Contributions of every phase-one snapshot of a model, then of its final model."""
    runs = [f"{wildcards.model}.epoch{e}" for e in SNAPSHOTS] + [wildcards.model]
    return [f"results/{wildcards.dataset}/{r}/contributions.parquet" for r in runs]


def get_progressive_labels(wildcards):
    return SNAPSHOTS + [None]


def get_replicate_runs(wildcards):
    """Contributions of the main run of every model and of its seed replicates."""
    return [
        f"results/{wildcards.dataset}/{r}/contributions.parquet"
        for m in TRAINED_MODELS
        for r in [m] + [f"{m}.seed{s}" for s in SEEDS]
    ]


def get_replicate_labels(wildcards):
    return [
        {"model": m, "seed": s}
        for m in TRAINED_MODELS
        for s in [config["seed"]] + SEEDS
    ]


def get_training_data_runs(wildcards):
    return {
        "categories": [
            f"results/{d}/{m}/categories.parquet"
            for m in MODELS
            for d in TRAINING_DATASETS
        ],
        "contributions": [
            f"results/{d}/{m}/contributions.parquet"
            for m in MODELS
            for d in TRAINING_DATASETS
        ],
    }


def get_training_data_labels(wildcards):
    return [{"model": m, "dataset": d} for m in MODELS for d in TRAINING_DATASETS]


def get_table_outputs():
    """Every table and figure: what `snakemake tables` regenerates from artifacts."""
    outputs = []
    for dataset in DATASETS:
        tables, figures = f"results/{dataset}/tables", f"results/{dataset}/figures"
        outputs += [
            f"{tables}/metrics.md",
            f"{tables}/top_semantics.md",
            f"{tables}/categories.md",
            f"{figures}/categories.png",
        ]
        for model in MODELS:
            if has_interactions(model):
                outputs += [f"{figures}/semantic_interactions_{model}.png"]
            outputs += [
                f"{figures}/top_semantics_{model}.png",
                f"{figures}/examples_{model}.png",
                f"{tables}/failures_{model}.md",
                f"{figures}/failures_{model}.png",
                f"{figures}/worst_best_{model}.png",
            ]
        if dataset in PROGRESSIVE_DATASETS:
            for model in TRAINED_MODELS:
                outputs += [
                    f"{tables}/progressive_{model}.md",
                    f"{figures}/progressive_{model}.png",
                ]
        if dataset in SEED_DATASETS and TRAINED_MODELS:
            outputs += [f"{tables}/seed_stability.md"]
            outputs += [
                f"{figures}/seed_replicates_{model}.png" for model in TRAINED_MODELS
            ]
    for dataset in recovery_datasets():
        outputs += [
            f"results/{dataset}/tables/recovery.md",
            f"results/{dataset}/figures/recovery.png",
            f"results/{dataset}/recovery_accepted.txt",
        ]
    if len(TRAINING_DATASETS) > 1:
        outputs += ["results/comparison/tables/training_data.md"]
        outputs += [
            f"results/comparison/figures/training_data_{model}.png" for model in MODELS
        ]
    return outputs


def get_final_outputs():
    return get_table_outputs() + get_interaction_outputs()


# ------------------------------------------------------------- resources
# The mem_mb and runtime of every job come from saldissect.training.resources.estimate,
# the data's size, the model, the batch, and the attempt (a retried job asks
# for twice, then three times as much).
from saldissect.core.io import IMAGE_SUFFIXES


@lru_cache(maxsize=None)
def _count_images(folder):
    """Images in a folder (one directory scan); 0 when it does not exist yet."""
    try:
        with os.scandir(folder) as entries:
            return sum(1 for e in entries if e.name.lower().endswith(IMAGE_SUFFIXES))
    except (FileNotFoundError, NotADirectoryError):
        return 0


def dataset_size(dataset):
    """Images of each split of a dataset: train, val and probe."""
    cfg = config["datasets"][dataset]
    if cfg["source"] == "synthetic":
        world = config["synthetic"]
        return {k: world[f"n_{k}"] for k in ("train", "val", "probe")}
    probe_images = cfg.get("probe_images") or f"{cfg['probe']}/images"
    probe = _count_images(probe_images)
    if is_imported(dataset) and not os.path.isdir(imported_layout(dataset)):
        return {**imported_size(dataset), "probe": probe}
    root = imported_layout(dataset) if is_imported(dataset) else cfg["salicon"]
    return {
        "train": _count_images(f"{root}/images/train"),
        "val": _count_images(f"{root}/images/val"),
        "probe": probe,
    }


@lru_cache(maxsize=None)
def imported_size(dataset):
    """Train and val images of a dataset not imported yet, from its source."""
    from saldissect.data.imports import source_size

    cfg = get_import_config(SimpleNamespace(dataset=dataset))
    return source_size(cfg)


# Per rule: the training section (epochs, batch), the images passed over per
# epoch, and the batch size of the stages that only infer.
def _stage_work(stage, wildcards):
    sizes = dataset_size(wildcards.dataset)
    both = sizes["train"] + sizes["val"]
    if stage in ("train_baseline", "train_phase1", "train_phase2", "train_interaction"):
        section = config["train"][stage.removeprefix("train_")]
        return section["batch_size"], both, section["epochs"]
    if stage == "cache_prob_maps":
        return config["train"]["phase2"]["batch_size"], both, 1
    if stage == "compute_thresholds":
        return config["thresholds"]["batch_size"], sizes["val"], 1
    if stage == "dissect_bases":
        return config["dissection"]["batch_size"], sizes["probe"], 1
    if (
        stage == "score_readouts"
    ):  # two passes: the fit, then the regression's bootstrap
        return config["dissection"]["batch_size"], sizes["probe"], 2
    if stage == "evaluate_models":
        return config["evaluation"]["batch_size"], sizes["val"], len(VARIANTS)
    if stage in ("analyse_interactions", "collect_examples"):
        return config["interaction"]["batch_size"], sizes["val"], 1
    raise ValueError(f"no resource model for rule {stage}")


# Vocabulary sizes for the dissection's bootstrap state before the probe is
# indexed: the paper's Visual Genome vocabulary, and a synthetic world's.
EXPECTED_CONCEPTS = {"synthetic": 64, "real": 2000}


def get_resources(stage, wildcards, attempt):
    from saldissect.training.resources import estimate

    batch, images, epochs = _stage_work(stage, wildcards)
    kind = "synthetic" if is_synthetic(wildcards.dataset) else "real"
    section = stage.removeprefix("train_")
    held, frozen = 0, "recompute"
    if section in ("phase2", "interaction"):
        frozen = frozen_maps(section, wildcards)
        held = config["train"][section]["cache_mb"] if frozen == "memory" else 0
    return estimate(
        stage,
        get_model_config(wildcards),
        batch_size=batch,
        n_images=images,
        epochs=epochs,
        gpu=config["gpus"] > 0,
        attempt=attempt,
        n_concepts=EXPECTED_CONCEPTS[kind],
        bootstrap=config["contributions"]["bootstrap"],
        pooled=config["contributions"]["score"] == "pooled_iou",
        held_mb=held,
        frozen_maps=frozen,
        attention_dim=config["interaction"]["dim"],
        attention_mb=config["interaction"]["attention_mb"],
    )


def get_mem_mb(stage):
    def mem_mb(wildcards, attempt):
        return get_resources(stage, wildcards, attempt)["mem_mb"]

    return mem_mb


def get_runtime(stage):
    def runtime(wildcards, attempt):
        return get_resources(stage, wildcards, attempt)["runtime"]

    return runtime


# ------------------------------------------------- P of a frozen phase one
def frozen_maps(section, wildcards):
    """How ``train.<section>`` (phase2, interaction) gets P of the frozen phase one:
    saldissect.training.resources.frozen_maps, here where the data's size is known."""
    from saldissect.training.resources import frozen_maps as resolve, prob_bytes

    sizes = dataset_size(wildcards.dataset)
    cfg = config["train"][section]
    return resolve(
        cfg["frozen_maps"],
        p_bytes=(sizes["train"] + sizes["val"])
        * prob_bytes(get_model_config(wildcards)),
        cache_mb=cfg["cache_mb"],
        gpu=config["gpus"] > 0,
    )


def get_frozen_training(section):
    """The training section of a stage on a frozen phase one, its frozen_maps resolved."""

    def training(wildcards):
        return {
            **config["train"][section],
            "frozen_maps": frozen_maps(section, wildcards),
        }

    return training


def get_prob_cache(section):
    """The float16 P files of rule cache_prob_maps when ``train.<section>`` reads them."""

    def cache(wildcards):
        if frozen_maps(section, wildcards) != "disk":
            return {}
        base = f"results/{wildcards.dataset}/{wildcards.model}/frozen"
        return {"train_cache": f"{base}/train.npy", "val_cache": f"{base}/val.npy"}

    return cache


def scaled(amount):
    """A fixed request for rules whose cost does not depend on the data, x attempt."""

    def by_attempt(wildcards, attempt):
        return amount * attempt

    return by_attempt
