# Tables and figures from Parquet artifacts (saldissect.report.stages).


# Tables and figures take seconds: on a cluster they run on the submitting
# node, not as jobs of their own.
localrules:
    make_tables,
    check_recovery,
    accept_recovery,
    plot_examples,
    analyse_failures,
    plot_failures,
    track_progress,
    compare_seeds,
    compare_training_data,
    plot_interactions,
    score_contributions,
    effective_config,


# The configuration a run uses, every default filled in: what to check before
# a long run (`snakemake results/effective_config.yaml --configfile ...`).
rule effective_config:
    output:
        config="results/effective_config.yaml",
    log:
        "results/logs/effective_config.log",
    benchmark:
        "results/benchmarks/effective_config.tsv"
    conda:
        "../../envs/saldissect.yaml"
    threads: 1
    resources:
        mem_mb=scaled(1000),
        runtime=scaled(5),
    params:
        config=config,
    script:
        "../scripts/effective_config.py"


rule make_tables:
    input:
        metrics=get_dataset_metrics,
        image_scores=get_dataset_image_scores,
        contributions=get_dataset_contributions,
        categories=get_dataset_categories,
    output:
        metrics_csv=report(
            "results/{dataset}/tables/metrics.csv",
            caption="../report/metrics_table.rst",
            category="Tables",
            subcategory="{dataset}",
        ),
        metrics_md="results/{dataset}/tables/metrics.md",
        top_csv=report(
            "results/{dataset}/tables/top_semantics.csv",
            caption="../report/top_semantics_table.rst",
            category="Tables",
            subcategory="{dataset}",
        ),
        top_md="results/{dataset}/tables/top_semantics.md",
        categories_csv=report(
            "results/{dataset}/tables/categories.csv",
            caption="../report/categories_table.rst",
            category="Tables",
            subcategory="{dataset}",
        ),
        categories_md="results/{dataset}/tables/categories.md",
        categories_png=report(
            "results/{dataset}/figures/categories.png",
            caption="../report/categories.rst",
            category="Contributions",
            subcategory="{dataset}",
        ),
        top_png=report(
            expand(
                "results/{{dataset}}/figures/top_semantics_{model}.png", model=MODELS
            ),
            caption="../report/top_semantics.rst",
            category="Contributions",
            subcategory="{dataset}",
        ),
    log:
        "results/logs/{dataset}/make_tables.log",
    benchmark:
        "results/benchmarks/{dataset}/make_tables.tsv"
    conda:
        "../../envs/saldissect.yaml"
    threads: 1
    resources:
        mem_mb=scaled(2000),
        runtime=scaled(10),
    params:
        confidence=config["contributions"]["confidence"],
        seed=config["seed"],
    script:
        "../scripts/make_tables.py"


rule plot_examples:
    input:
        examples="results/{dataset}/{model}/examples.parquet",
        concepts="results/{dataset}/data/concepts.parquet",
    output:
        png=report(
            "results/{dataset}/figures/examples_{model}.png",
            caption="../report/examples.rst",
            category="Dissection examples",
            subcategory="{dataset}",
        ),
    log:
        "results/logs/{dataset}/{model}/plot_examples.log",
    benchmark:
        "results/benchmarks/{dataset}/{model}/plot_examples.tsv"
    conda:
        "../../envs/saldissect.yaml"
    threads: 1
    resources:
        mem_mb=scaled(2000),
        runtime=scaled(10),
    script:
        "../scripts/plot_examples.py"


rule plot_failures:
    input:
        table="results/{dataset}/{model}/failures.parquet",
        images="results/{dataset}/{model}/failure_images.parquet",
        val="results/{dataset}/data/val.parquet",
    output:
        csv=report(
            "results/{dataset}/tables/failures_{model}.csv",
            caption="../report/failures_table.rst",
            category="Failure patterns",
            subcategory="{dataset}",
        ),
        md="results/{dataset}/tables/failures_{model}.md",
        png=report(
            "results/{dataset}/figures/failures_{model}.png",
            caption="../report/failures.rst",
            category="Failure patterns",
            subcategory="{dataset}",
        ),
        examples_png=report(
            "results/{dataset}/figures/worst_best_{model}.png",
            caption="../report/worst_best.rst",
            category="Failure patterns",
            subcategory="{dataset}",
        ),
    log:
        "results/logs/{dataset}/{model}/plot_failures.log",
    benchmark:
        "results/benchmarks/{dataset}/{model}/plot_failures.tsv"
    conda:
        "../../envs/saldissect.yaml"
    threads: 1
    resources:
        mem_mb=scaled(2000),
        runtime=scaled(10),
    params:
        failures=pick(config["failures"], "variant", "metric", "fraction", "top"),
    script:
        "../scripts/plot_failures.py"


rule track_progress:
    input:
        runs=get_progressive_runs,
        history="results/{dataset}/{model}/phase1/history.parquet",
    output:
        csv=report(
            "results/{dataset}/tables/progressive_{model}.csv",
            caption="../report/progressive_table.rst",
            category="Progressive fine-tuning",
            subcategory="{dataset}",
        ),
        md="results/{dataset}/tables/progressive_{model}.md",
        png=report(
            "results/{dataset}/figures/progressive_{model}.png",
            caption="../report/progressive.rst",
            category="Progressive fine-tuning",
            subcategory="{dataset}",
        ),
    log:
        "results/logs/{dataset}/{model}/track_progress.log",
    benchmark:
        "results/benchmarks/{dataset}/{model}/track_progress.tsv"
    conda:
        "../../envs/saldissect.yaml"
    threads: 1
    resources:
        mem_mb=scaled(2000),
        runtime=scaled(10),
    params:
        epochs=get_progressive_labels,
        top=config["progressive"]["top"],
        last_epoch=config["train"]["phase1"]["epochs"],
    script:
        "../scripts/track_progress.py"


rule compare_seeds:
    input:
        runs=get_replicate_runs,
    output:
        csv=report(
            "results/{dataset}/tables/seed_stability.csv",
            caption="../report/seed_stability.rst",
            category="Uncertainty",
            subcategory="{dataset}",
        ),
        md="results/{dataset}/tables/seed_stability.md",
        png=report(
            expand(
                "results/{{dataset}}/figures/seed_replicates_{model}.png", model=MODELS
            ),
            caption="../report/seed_replicates.rst",
            category="Uncertainty",
            subcategory="{dataset}",
        ),
    log:
        "results/logs/{dataset}/compare_seeds.log",
    benchmark:
        "results/benchmarks/{dataset}/compare_seeds.tsv"
    conda:
        "../../envs/saldissect.yaml"
    threads: 1
    resources:
        mem_mb=scaled(2000),
        runtime=scaled(10),
    params:
        labels=get_replicate_labels,
        top=config["replicates"]["top"],
    script:
        "../scripts/compare_seeds.py"


rule compare_training_data:
    input:
        unpack(get_training_data_runs),
    output:
        csv=report(
            "results/comparison/tables/training_data.csv",
            caption="../report/training_data_table.rst",
            category="Impact of training data",
        ),
        md="results/comparison/tables/training_data.md",
        png=report(
            expand(
                "results/comparison/figures/training_data_{model}.png", model=MODELS
            ),
            caption="../report/training_data.rst",
            category="Impact of training data",
        ),
    log:
        "results/logs/comparison/compare_training_data.log",
    benchmark:
        "results/benchmarks/comparison/compare_training_data.tsv"
    conda:
        "../../envs/saldissect.yaml"
    threads: 1
    resources:
        mem_mb=scaled(2000),
        runtime=scaled(10),
    params:
        labels=get_training_data_labels,
        top=config["replicates"]["top"],
    script:
        "../scripts/compare_training_data.py"


rule plot_interactions:
    input:
        semantic="results/{dataset}/{model}/semantic_interactions.parquet",
        contributions="results/{dataset}/{model}/contributions.parquet",
    output:
        png=report(
            "results/{dataset}/figures/semantic_interactions_{model}.png",
            caption="../report/semantic_interactions.rst",
            category="Interactions",
            subcategory="{dataset}",
        ),
    log:
        "results/logs/{dataset}/{model}/plot_interactions.log",
    benchmark:
        "results/benchmarks/{dataset}/{model}/plot_interactions.tsv"
    conda:
        "../../envs/saldissect.yaml"
    threads: 1
    resources:
        mem_mb=scaled(2000),
        runtime=scaled(10),
    params:
        top=config["interaction"]["top_concepts"],
    script:
        "../scripts/plot_interactions.py"
