# The synthetic recovery check (saldissect.recovery, docs/method.md 8):
# recovered vs planted weights of every synthetic run and control.


rule check_recovery:
    input:
        runs=get_recovery_runs,
        interactions=get_recovery_interactions,
        planted=f"{WORLD}/planted.parquet",
    output:
        csv=report(
            "results/{dataset}/tables/recovery.csv",
            caption="../report/recovery_table.rst",
            category="Synthetic check",
        ),
        md="results/{dataset}/tables/recovery.md",
        png=report(
            "results/{dataset}/figures/recovery.png",
            caption="../report/recovery.rst",
            category="Synthetic check",
        ),
    log:
        "results/logs/{dataset}/check_recovery.log",
    benchmark:
        "results/benchmarks/{dataset}/check_recovery.tsv"
    conda:
        "../../envs/saldissect.yaml"
    threads: 1
    resources:
        mem_mb=scaled(2000),
        runtime=scaled(10),
    params:
        min_abs_weight=config["recovery"]["min_abs_weight"],
        acceptance=config["recovery"]["acceptance"],
        labels=get_recovery_labels,
        interaction=config["synthetic"]["interaction"],
    script:
        "../scripts/check_recovery.py"


# Fails the run, naming every row of the recovery table outside
# recovery.acceptance; the table itself stays for reading.
rule accept_recovery:
    input:
        csv="results/{dataset}/tables/recovery.csv",
    output:
        accepted="results/{dataset}/recovery_accepted.txt",
    log:
        "results/logs/{dataset}/accept_recovery.log",
    benchmark:
        "results/benchmarks/{dataset}/accept_recovery.tsv"
    conda:
        "../../envs/saldissect.yaml"
    threads: 1
    resources:
        mem_mb=scaled(1000),
        runtime=scaled(5),
    script:
        "../scripts/accept_recovery.py"


# The sweep (saldissect.recovery.sweep, docs/method.md 8): the recovery check on
# worlds the defaults were not tuned for, each run by the workflow in its own
# folder under results/sweep/. Target: rule sweep (make sweep).
rule sweep_world:
    output:
        csv="results/sweep/{world}/recovery.csv",
        concepts="results/sweep/{world}/concepts.parquet",
    log:
        "results/logs/sweep/{world}/sweep_world.log",
    benchmark:
        "results/benchmarks/sweep/{world}/sweep_world.tsv"
    wildcard_constraints:
        world="(seed|perm|model|nopair)[0-9]+",
    conda:
        "../../envs/saldissect.yaml"
    threads: config["threads"]
    resources:
        mem_mb=scaled(8000),
        runtime=scaled(120),
    params:
        config=get_sweep_config(),
        work=lambda wildcards: f"results/sweep/{wildcards.world}/work",
        snakefile=workflow.main_snakefile,
    script:
        "../scripts/sweep_world.py"


rule sweep_recovery:
    input:
        tables=expand("results/sweep/{world}/recovery.csv", world=SWEEP_WORLDS),
        concepts=expand("results/sweep/{world}/concepts.parquet", world=SWEEP_WORLDS),
    output:
        csv="results/sweep/tables/recovery.csv",
        md="results/sweep/tables/recovery.md",
    log:
        "results/logs/sweep/sweep_recovery.log",
    benchmark:
        "results/benchmarks/sweep/sweep_recovery.tsv"
    conda:
        "../../envs/saldissect.yaml"
    threads: 1
    resources:
        mem_mb=scaled(1000),
        runtime=scaled(5),
    params:
        min_abs_weight=config["recovery"]["min_abs_weight"],
    script:
        "../scripts/sweep_recovery.py"
