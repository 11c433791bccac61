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
