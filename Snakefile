# saldissect: what do deep saliency models learn about visual attention?
# Reads like a table of contents; the stages live in workflow/rules/.
from snakemake.utils import min_version

min_version("8.10")


# No configfile directive: common.smk lays the embedded default,
# config/config.yaml, under the command line's configuration unless that names
# a preset (config/salicon.yaml).
report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/training.smk"
include: "workflow/rules/analysis.smk"
include: "workflow/rules/interaction.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/recovery.smk"


rule all:
    default_target: True
    input:
        get_final_outputs(),


rule tables:
    input:
        get_table_outputs(),


# The recovery check on worlds the defaults were not tuned for (config: sweep).
rule sweep:
    input:
        "results/sweep/tables/recovery.md",
