# Tables and figures from Parquet artifacts, and the synthetic recovery check.


rule make_tables:
    input:
        metrics=get_dataset_metrics,
        contributions=get_dataset_contributions,
        categories=get_dataset_categories,
    output:
        metrics_csv="results/{dataset}/tables/metrics.csv",
        metrics_md="results/{dataset}/tables/metrics.md",
        top_csv="results/{dataset}/tables/top_semantics.csv",
        top_md="results/{dataset}/tables/top_semantics.md",
        categories_csv="results/{dataset}/tables/categories.csv",
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
        mem_mb=2000,
        runtime=10,
    script:
        "../scripts/make_tables.py"


rule validate_recovery:
    input:
        runs=get_validation_runs,
        interactions=get_validation_interactions,
        planted=f"{WORLD}/planted.parquet",
    output:
        csv="results/{dataset}/tables/validation.csv",
        md=report(
            "results/{dataset}/tables/validation.md",
            caption="../report/validation.rst",
            category="Synthetic check",
        ),
        png=report(
            "results/{dataset}/figures/recovery.png",
            caption="../report/recovery.rst",
            category="Synthetic check",
        ),
    log:
        "results/logs/{dataset}/validate_recovery.log",
    benchmark:
        "results/benchmarks/{dataset}/validate_recovery.tsv"
    conda:
        "../../envs/saldissect.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        min_abs_weight=config["validation"]["min_abs_weight"],
        labels=get_validation_labels,
        interaction=config["synthetic"]["interaction"],
    script:
        "../scripts/validate_recovery.py"
