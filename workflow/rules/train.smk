# Training: baseline (plain head), phase one (factorised) and phase two
# (reformulated), METHOD.md 1-2.


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
    conda:
        "../../envs/saldissect.yaml"
    threads: config["threads"]
    resources:
        mem_mb=8000,
        runtime=24 * 60,
        gpu=config["gpus"],
    params:
        model=get_model_config,
        train=config["train"]["baseline"],
        seed=get_run_seed,
        device=config["device"],
        head="plain",
        snapshots=[],
    script:
        "../scripts/train_saliency.py"


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
    conda:
        "../../envs/saldissect.yaml"
    threads: config["threads"]
    resources:
        mem_mb=8000,
        runtime=24 * 60,
        gpu=config["gpus"],
    params:
        model=get_model_config,
        train=config["train"]["phase1"],
        seed=get_run_seed,
        device=config["device"],
        head="factorised",
        snapshots=SNAPSHOTS,
    script:
        "../scripts/train_saliency.py"


rule train_phase2:
    input:
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
    conda:
        "../../envs/saldissect.yaml"
    threads: config["threads"]
    resources:
        mem_mb=8000,
        runtime=12 * 60,
        gpu=config["gpus"],
    params:
        model=get_model_config,
        train=config["train"]["phase2"],
        seed=get_run_seed,
        device=config["device"],
    script:
        "../scripts/train_phase2.py"
