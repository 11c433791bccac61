# Training: baseline (plain head), phase one (factorised) and phase two
# (reformulated), docs/method.md 1-2.


rule train_baseline:
    input:
        train="results/{dataset}/data/train.parquet",
        val="results/{dataset}/data/val.parquet",
    output:
        model="results/{dataset}/{model}/baseline/model.pt",
        history="results/{dataset}/{model}/baseline/history.parquet",
    log:
        "results/logs/{dataset}/{model}/train_baseline.log",
    benchmark:
        "results/benchmarks/{dataset}/{model}/train_baseline.tsv"
    wildcard_constraints:
        model=runs_trained("baseline"),
    conda:
        "../../envs/saldissect.yaml"
    threads: config["threads"]
    resources:
        mem_mb=get_mem_mb("train_baseline"),
        runtime=get_runtime("train_baseline"),
        gpu=config["gpus"],
    params:
        model=get_model_config,
        train=config["train"]["baseline"],
        seed=get_run_seed,
        device=config["device"],
        head="plain",
        snapshots=[],
    script:
        "../scripts/train_baseline.py"


rule train_phase1:
    input:
        train="results/{dataset}/data/train.parquet",
        val="results/{dataset}/data/val.parquet",
    output:
        model="results/{dataset}/{model}/phase1/model.pt",
        history="results/{dataset}/{model}/phase1/history.parquet",
        snapshots=get_snapshot_outputs(),
    log:
        "results/logs/{dataset}/{model}/train_phase1.log",
    benchmark:
        "results/benchmarks/{dataset}/{model}/train_phase1.tsv"
    wildcard_constraints:
        model=runs_trained("phase1"),
    conda:
        "../../envs/saldissect.yaml"
    threads: config["threads"]
    resources:
        mem_mb=get_mem_mb("train_phase1"),
        runtime=get_runtime("train_phase1"),
        gpu=config["gpus"],
    params:
        model=get_model_config,
        train=config["train"]["phase1"],
        seed=get_run_seed,
        device=config["device"],
        head="factorised",
        snapshots=SNAPSHOTS,
    script:
        "../scripts/train_phase1.py"


rule train_phase2:
    input:
        unpack(get_prob_cache("phase2")),
        train="results/{dataset}/data/train.parquet",
        val="results/{dataset}/data/val.parquet",
        phase1=get_phase1_checkpoint,
    output:
        model="results/{dataset}/{model}/phase2/model.pt",
        history="results/{dataset}/{model}/phase2/history.parquet",
        basis_weights="results/{dataset}/{model}/basis_weights.parquet",
    log:
        "results/logs/{dataset}/{model}/train_phase2.log",
    benchmark:
        "results/benchmarks/{dataset}/{model}/train_phase2.tsv"
    wildcard_constraints:
        model=runs_trained("phase2"),
    conda:
        "../../envs/saldissect.yaml"
    threads: config["threads"]
    resources:
        mem_mb=get_mem_mb("train_phase2"),
        runtime=get_runtime("train_phase2"),
        gpu=config["gpus"],
    params:
        model=get_model_config,
        train=get_frozen_training("phase2"),
        seed=get_run_seed,
        device=config["device"],
    script:
        "../scripts/train_phase2.py"


# P of the frozen phase one for every train and val image, as float16 files
# that phase two and the interaction variant read when their frozen_maps is
# disk (README, "Paper scale"); deleted once both have trained.
rule cache_prob_maps:
    input:
        train="results/{dataset}/data/train.parquet",
        val="results/{dataset}/data/val.parquet",
        phase1=get_phase1_checkpoint,
    output:
        train=temp("results/{dataset}/{model}/frozen/train.npy"),
        val=temp("results/{dataset}/{model}/frozen/val.npy"),
    log:
        "results/logs/{dataset}/{model}/cache_prob_maps.log",
    benchmark:
        "results/benchmarks/{dataset}/{model}/cache_prob_maps.tsv"
    conda:
        "../../envs/saldissect.yaml"
    threads: config["threads"]
    resources:
        mem_mb=get_mem_mb("cache_prob_maps"),
        runtime=get_runtime("cache_prob_maps"),
        gpu=config["gpus"],
    params:
        model=get_model_config,
        batch_size=config["train"]["phase2"]["batch_size"],
        device=config["device"],
    script:
        "../scripts/cache_prob_maps.py"


# The reference code's checkpoints of a model (models.<m>.checkpoints) as the
# model.pt its training rule would write; the history is empty.
rule import_checkpoint:
    input:
        checkpoint=get_imported_file,
    output:
        model="results/{dataset}/{imported}/model.pt",
        history="results/{dataset}/{imported}/history.parquet",
    log:
        "results/logs/{dataset}/{imported}/import_checkpoint.log",
    benchmark:
        "results/benchmarks/{dataset}/{imported}/import_checkpoint.tsv"
    wildcard_constraints:
        imported=imported_runs_and_phases(),
    conda:
        "../../envs/saldissect.yaml"
    resources:
        mem_mb=scaled(4000),
        runtime=scaled(10),
    params:
        model=get_imported_model_config,
        phase=get_imported_phase,
    script:
        "../scripts/import_checkpoint.py"


rule import_phase2:
    input:
        checkpoint=get_imported_checkpoint("phase2"),
    output:
        model="results/{dataset}/{model}/phase2/model.pt",
        history="results/{dataset}/{model}/phase2/history.parquet",
        basis_weights="results/{dataset}/{model}/basis_weights.parquet",
    log:
        "results/logs/{dataset}/{model}/import_phase2.log",
    benchmark:
        "results/benchmarks/{dataset}/{model}/import_phase2.tsv"
    wildcard_constraints:
        model=runs_imported("phase2"),
    conda:
        "../../envs/saldissect.yaml"
    resources:
        mem_mb=scaled(4000),
        runtime=scaled(10),
    params:
        model=get_model_config,
        phase="phase2",
    script:
        "../scripts/import_phase2.py"
