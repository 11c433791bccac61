# Analysis: thresholds, dissection, contributions, evaluation (docs/method.md 3-5, 7).


rule compute_thresholds:
    input:
        model=get_phase1_checkpoint,
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
        mem_mb=get_mem_mb("compute_thresholds"),
        runtime=get_runtime("compute_thresholds"),
        gpu=config["gpus"],
    params:
        model=get_model_config,
        thresholds=config["thresholds"],
        device=config["device"],
    script:
        "../scripts/compute_thresholds.py"


rule dissect_bases:
    input:
        model=get_phase1_checkpoint,
        thresholds="results/{dataset}/{model}/thresholds.parquet",
        probe="results/{dataset}/data/probe.parquet",
        concepts="results/{dataset}/data/concepts.parquet",
    output:
        alignment="results/{dataset}/{model}/alignment.parquet",
        bootstrap="results/{dataset}/{model}/alignment_bootstrap.parquet",
    log:
        "results/logs/{dataset}/{model}/dissect_bases.log",
    benchmark:
        "results/benchmarks/{dataset}/{model}/dissect_bases.tsv"
    conda:
        "../../envs/saldissect.yaml"
    threads: config["threads"]
    resources:
        mem_mb=get_mem_mb("dissect_bases"),
        runtime=get_runtime("dissect_bases"),
        gpu=config["gpus"],
    params:
        model=get_model_config,
        dissection=config["dissection"],
        bootstrap=get_bootstrap_settings(),
        seed=get_run_seed,
        device=config["device"],
    script:
        "../scripts/dissect_bases.py"


# The contrast and regression readouts of the phase-two logit, with bootstrap
# intervals (saldissect.analysis.readouts): needs phase two's basis weights.
rule score_readouts:
    input:
        model=get_phase1_checkpoint,
        basis_weights="results/{dataset}/{model}/basis_weights.parquet",
        probe="results/{dataset}/data/probe.parquet",
        concepts="results/{dataset}/data/concepts.parquet",
    output:
        readouts="results/{dataset}/{model}/readouts.parquet",
    log:
        "results/logs/{dataset}/{model}/score_readouts.log",
    benchmark:
        "results/benchmarks/{dataset}/{model}/score_readouts.tsv"
    conda:
        "../../envs/saldissect.yaml"
    threads: config["threads"]
    resources:
        mem_mb=get_mem_mb("score_readouts"),
        runtime=get_runtime("score_readouts"),
        gpu=config["gpus"],
    params:
        model=get_model_config,
        dissection=config["dissection"],
        contributions=pick(config["contributions"], "bootstrap", "confidence", "ridge"),
        seed=get_run_seed,
        device=config["device"],
    script:
        "../scripts/score_readouts.py"


rule score_contributions:
    input:
        alignment="results/{dataset}/{model}/alignment.parquet",
        bootstrap="results/{dataset}/{model}/alignment_bootstrap.parquet",
        basis_weights="results/{dataset}/{model}/basis_weights.parquet",
        readouts="results/{dataset}/{model}/readouts.parquet",
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
        mem_mb=scaled(2000),
        runtime=scaled(30),
    params:
        vocabulary=pick(config["vocabulary"], "categories"),
        contributions=config["contributions"],
    script:
        "../scripts/score_contributions.py"


rule evaluate_models:
    input:
        unpack(get_evaluation_checkpoints),
        val="results/{dataset}/data/val.parquet",
    output:
        metrics="results/{dataset}/{model}/metrics.parquet",
        image_scores="results/{dataset}/{model}/image_scores.parquet",
    log:
        "results/logs/{dataset}/{model}/evaluate_models.log",
    benchmark:
        "results/benchmarks/{dataset}/{model}/evaluate_models.tsv"
    conda:
        "../../envs/saldissect.yaml"
    threads: config["threads"]
    resources:
        mem_mb=get_mem_mb("evaluate_models"),
        runtime=get_runtime("evaluate_models"),
        gpu=config["gpus"],
    params:
        model=get_model_config,
        evaluation=config["evaluation"],
        variants=VARIANTS,
        seed=config["seed"],
        device=config["device"],
    script:
        "../scripts/evaluate_models.py"


rule collect_examples:
    input:
        model=get_phase1_checkpoint,
        thresholds="results/{dataset}/{model}/thresholds.parquet",
        alignment="results/{dataset}/{model}/alignment.parquet",
        contributions="results/{dataset}/{model}/contributions.parquet",
        probe="results/{dataset}/data/probe.parquet",
        concepts="results/{dataset}/data/concepts.parquet",
    output:
        examples="results/{dataset}/{model}/examples.parquet",
    log:
        "results/logs/{dataset}/{model}/collect_examples.log",
    benchmark:
        "results/benchmarks/{dataset}/{model}/collect_examples.tsv"
    conda:
        "../../envs/saldissect.yaml"
    threads: config["threads"]
    resources:
        mem_mb=get_mem_mb("collect_examples"),
        runtime=get_runtime("collect_examples"),
        gpu=config["gpus"],
    params:
        model=get_model_config,
        examples=config["examples"],
        dissection=config["dissection"],
        score=config["contributions"]["score"],
        device=config["device"],
    script:
        "../scripts/collect_examples.py"


rule analyse_failures:
    input:
        image_scores=get_failure_scores,
        val_concepts="results/{dataset}/data/val_concepts.parquet",
    output:
        table="results/{dataset}/{model}/failures.parquet",
        images="results/{dataset}/{model}/failure_images.parquet",
    log:
        "results/logs/{dataset}/{model}/analyse_failures.log",
    benchmark:
        "results/benchmarks/{dataset}/{model}/analyse_failures.tsv"
    conda:
        "../../envs/saldissect.yaml"
    threads: 1
    resources:
        mem_mb=scaled(2000),
        runtime=scaled(10),
    params:
        failures=pick(config["failures"], "variant", "metric", "fraction", "min_images"),
        vocabulary=pick(config["vocabulary"], "categories"),
    script:
        "../scripts/analyse_failures.py"
