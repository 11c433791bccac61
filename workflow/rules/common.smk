# Config validation and every input function used by the rules.
from pathlib import Path

from snakemake.exceptions import WorkflowError

from saldissect.config import ConfigError, load_schema, validate_config

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
    """Files the dataset is read from (the synthetic world is itself an output)."""
    if is_synthetic(wildcards.dataset):
        return {
            "salicon": f"{WORLD}/salicon",
            "visual_genome": f"{WORLD}/visual_genome",
        }
    return {}


def get_largest_batch():
    """A split must hold at least one batch of every training phase."""
    return max(config["train"][phase]["batch_size"] for phase in ("phase1", "phase2"))


def get_evaluation_checkpoints(wildcards):
    base = f"results/{wildcards.dataset}/{wildcards.model}"
    return {
        "phase1": f"{base}/phase1/model.pt",
        "phase2": f"{base}/phase2/model.pt",
    }


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
    return get_table_outputs()
