# Config validation and every input function used by the rules.
import copy
from pathlib import Path

from snakemake.exceptions import WorkflowError

from saldissect.config import ConfigError, load_schema, validate_config

# datasets and models given on the command line (--configfile, --config) replace
# the embedded synthetic ones instead of being added to them.
_command_line = getattr(
    getattr(workflow, "config_settings", None), "overwrite_config", None
)
for _key in ("datasets", "models"):
    if _command_line and _key in _command_line:
        config[_key] = copy.deepcopy(_command_line[_key])

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


wildcard_constraints:
    dataset="|".join(DATASETS),
    model="|".join(MODELS),


def is_synthetic(dataset):
    return config["datasets"][dataset]["source"] == "synthetic"


def get_dataset_config(wildcards):
    return config["datasets"][wildcards.dataset]


def get_model_config(wildcards):
    return config["models"][wildcards.model]


def get_dataset_inputs(wildcards):
    """The synthetic world is itself an output; real data is checked by prepare_data."""
    if is_synthetic(wildcards.dataset):
        return {
            "salicon": f"{WORLD}/salicon",
            "visual_genome": f"{WORLD}/visual_genome",
        }
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
        }
    return {
        "salicon": dataset["salicon"],
        "probe": dataset["probe"],
        "scene_graphs": dataset["scene_graphs"],
        "probe_images": dataset.get("probe_images"),
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


def validated_datasets():
    """Synthetic datasets that are not controls: their recovery is checked."""
    return [
        d
        for d in DATASETS
        if is_synthetic(d) and not config["datasets"][d]["shuffle_maps"]
    ]


def synthetic_runs():
    """(dataset, model) of every synthetic run, the shuffled controls included."""
    return [(d, m) for d in DATASETS if is_synthetic(d) for m in MODELS]


def get_validation_runs(wildcards):
    return [f"results/{d}/{m}/contributions.parquet" for d, m in synthetic_runs()]


def get_validation_interactions(wildcards):
    """Semantic interactions of every synthetic run: the planted pair's rank."""
    return [
        f"results/{d}/{m}/semantic_interactions.parquet" for d, m in synthetic_runs()
    ]


def get_interaction_outputs():
    """Interaction analyses and heatmaps of every run (METHOD.md 6)."""
    outputs = []
    for dataset in DATASETS:
        for model in MODELS:
            base = f"results/{dataset}/{model}"
            outputs += [
                f"{base}/interaction_alignment.parquet",
                f"{base}/basis_interactions.parquet",
                f"{base}/semantic_interactions.parquet",
                f"results/{dataset}/figures/semantic_interactions_{model}.png",
            ]
    return outputs


def get_validation_labels(wildcards):
    return [
        {"dataset": d, "model": m, "control": config["datasets"][d]["shuffle_maps"]}
        for d, m in synthetic_runs()
    ]


def get_table_outputs():
    outputs = []
    for dataset in DATASETS:
        outputs += [
            f"results/{dataset}/tables/metrics.md",
            f"results/{dataset}/tables/top_semantics.md",
            f"results/{dataset}/tables/categories.md",
            f"results/{dataset}/figures/categories.png",
        ]
        outputs += [
            f"results/{dataset}/figures/top_semantics_{model}.png" for model in MODELS
        ]
    for dataset in validated_datasets():
        outputs += [
            f"results/{dataset}/tables/validation.md",
            f"results/{dataset}/figures/recovery.png",
        ]
    return outputs


def get_final_outputs():
    return get_table_outputs() + get_interaction_outputs()
