from saldissect import pipeline

pipeline.setup(snakemake.threads, snakemake.log[0])
pipeline.run_evaluation(
    {"phase1": snakemake.input.phase1, "phase2": snakemake.input.phase2},
    snakemake.input.val,
    snakemake.params.model,
    snakemake.params.evaluation,
    snakemake.output.metrics,
    seed=snakemake.params.seed,
    device=snakemake.params.device,
)
