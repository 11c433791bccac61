# Analysis: thresholds, dissection, contributions, evaluation (METHOD.md 3-5, 7).


rule compute_thresholds:
    input:
        model="results/{dataset}/{model}/phase1/model.pt",
        val="results/{dataset}/data/val.parquet",
    output:
        thresholds="results/{dataset}/{model}/thresholds.parquet",
    log:
        "results/logs/{dataset}/{model}/compute_thresholds.log",
    benchmark:
        "results/benchmarks/{dataset}/{model}/compute_thresholds.tsv"
    conda:
        "../../envs/saldissect.yaml"
    threads: config["threads"]
    resources:
        mem_mb=8000,
        runtime=6 * 60,
        gpu=config["gpus"],
    params:
        model=get_model_config,
        thresholds=config["thresholds"],
        device=config["device"],
    script:
        "../scripts/compute_thresholds.py"


rule dissect_bases:
    input:
        model="results/{dataset}/{model}/phase1/model.pt",
        thresholds="results/{dataset}/{model}/thresholds.parquet",
        probe="results/{dataset}/data/probe.parquet",
        concepts="results/{dataset}/data/concepts.parquet",
    output:
        alignment="results/{dataset}/{model}/alignment.parquet",
    log:
        "results/logs/{dataset}/{model}/dissect_bases.log",
    benchmark:
        "results/benchmarks/{dataset}/{model}/dissect_bases.tsv"
    conda:
        "../../envs/saldissect.yaml"
    threads: config["threads"]
    resources:
        mem_mb=16000,
        runtime=12 * 60,
        gpu=config["gpus"],
    params:
        model=get_model_config,
        dissection=config["dissection"],
        device=config["device"],
    script:
        "../scripts/dissect_bases.py"


rule score_contributions:
    input:
        alignment="results/{dataset}/{model}/alignment.parquet",
        basis_weights="results/{dataset}/{model}/basis_weights.parquet",
    output:
        contributions="results/{dataset}/{model}/contributions.parquet",
        categories="results/{dataset}/{model}/categories.parquet",
    log:
        "results/logs/{dataset}/{model}/score_contributions.log",
    benchmark:
        "results/benchmarks/{dataset}/{model}/score_contributions.tsv"
    conda:
        "../../envs/saldissect.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        vocabulary=config["vocabulary"],
        contributions=config["contributions"],
    script:
        "../scripts/score_contributions.py"


rule evaluate_models:
    input:
        unpack(get_evaluation_checkpoints),
        val="results/{dataset}/data/val.parquet",
    output:
        metrics="results/{dataset}/{model}/metrics.parquet",
    log:
        "results/logs/{dataset}/{model}/evaluate_models.log",
    benchmark:
        "results/benchmarks/{dataset}/{model}/evaluate_models.tsv"
    conda:
        "../../envs/saldissect.yaml"
    threads: config["threads"]
    resources:
        mem_mb=8000,
        runtime=6 * 60,
        gpu=config["gpus"],
    params:
        model=get_model_config,
        evaluation=config["evaluation"],
        variants=VARIANTS,
        seed=config["seed"],
        device=config["device"],
    script:
        "../scripts/evaluate_models.py"
