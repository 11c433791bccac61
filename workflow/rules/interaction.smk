# Interactions: self-attention over grid cells during reformulation (docs/method.md 6).


rule train_interaction:
    input:
        unpack(get_prob_cache("interaction")),
        train="results/{dataset}/data/train.parquet",
        val="results/{dataset}/data/val.parquet",
        phase1="results/{dataset}/{model}/phase1/model.pt",
    output:
        model="results/{dataset}/{model}/interaction/model.pt",
        history="results/{dataset}/{model}/interaction/history.parquet",
    log:
        "results/logs/{dataset}/{model}/train_interaction.log",
    benchmark:
        "results/benchmarks/{dataset}/{model}/train_interaction.tsv"
    wildcard_constraints:
        model=runs_trained("interaction"),
    conda:
        "../../envs/saldissect.yaml"
    threads: config["threads"]
    resources:
        mem_mb=get_mem_mb("train_interaction"),
        runtime=get_runtime("train_interaction"),
        gpu=config["gpus"],
    params:
        model=get_model_config,
        train=get_frozen_training("interaction"),
        dim=config["interaction"]["dim"],
        readout=config["interaction"]["readout"],
        seed=config["seed"],
        device=config["device"],
    script:
        "../scripts/train_interaction.py"


rule analyse_interactions:
    input:
        phase1="results/{dataset}/{model}/phase1/model.pt",
        interaction="results/{dataset}/{model}/interaction/model.pt",
        thresholds="results/{dataset}/{model}/thresholds.parquet",
        alignment="results/{dataset}/{model}/alignment.parquet",
        val="results/{dataset}/data/val.parquet",
        basis_weights="results/{dataset}/{model}/basis_weights.parquet",
        probe="results/{dataset}/data/probe.parquet",
        concepts="results/{dataset}/data/concepts.parquet",
    output:
        alignment="results/{dataset}/{model}/interaction_alignment.parquet",
        basis="results/{dataset}/{model}/basis_interactions.parquet",
        semantic="results/{dataset}/{model}/semantic_interactions.parquet",
    log:
        "results/logs/{dataset}/{model}/analyse_interactions.log",
    benchmark:
        "results/benchmarks/{dataset}/{model}/analyse_interactions.tsv"
    conda:
        "../../envs/saldissect.yaml"
    threads: config["threads"]
    resources:
        mem_mb=get_mem_mb("analyse_interactions"),
        runtime=get_runtime("analyse_interactions"),
        gpu=config["gpus"],
    params:
        model=get_model_config,
        interaction=pick(
            config["interaction"], "dim", "batch_size", "attention_mb", "min_images"
        ),
        dissection=pick(config["dissection"], "min_cover"),
        contributions=pick(config["contributions"], "top_k", "score"),
        evaluation=pick(config["evaluation"], "center_bias", "center_bias_sigma"),
        device=config["device"],
    script:
        "../scripts/analyse_interactions.py"
