# Data: the synthetic world and the per-dataset tables every later stage reads.


rule generate_world:
    output:
        planted=f"{WORLD}/planted.parquet",
        salicon=directory(f"{WORLD}/salicon"),
        visual_genome=directory(f"{WORLD}/visual_genome"),
        visual_genome_val=directory(f"{WORLD}/visual_genome_val"),
    log:
        "results/logs/generate_world.log",
    benchmark:
        "results/benchmarks/generate_world.tsv"
    conda:
        "../../envs/saldissect.yaml"
    threads: 1
    resources:
        mem_mb=scaled(2000),
        runtime=scaled(30),
    params:
        synthetic=config["synthetic"],
    script:
        "../scripts/generate_world.py"


rule prepare_data:
    input:
        unpack(get_dataset_inputs),
    output:
        train="results/{dataset}/data/train.parquet",
        val="results/{dataset}/data/val.parquet",
        probe="results/{dataset}/data/probe.parquet",
        concepts="results/{dataset}/data/concepts.parquet",
        val_concepts="results/{dataset}/data/val_concepts.parquet",
        rejects="results/{dataset}/data/rejects.parquet",
    log:
        "results/logs/{dataset}/prepare_data.log",
    benchmark:
        "results/benchmarks/{dataset}/prepare_data.tsv"
    conda:
        "../../envs/saldissect.yaml"
    threads: config["threads"]
    resources:
        mem_mb=scaled(4000),
        runtime=scaled(60),
    params:
        dataset=get_shuffle,
        manifest=get_data_manifest,
        paths=get_dataset_paths,
        vocabulary=pick(
            config["vocabulary"],
            "min_object_count",
            "min_attribute_count",
            "keep_coco",
        ),
        seed=config["seed"],
        batch_size=get_largest_batch(),
        on_bad_sample=config["on_bad_sample"],
    script:
        "../scripts/prepare_data.py"


rule import_dataset:
    output:
        salicon=directory("results/{dataset}/import/salicon"),
    log:
        "results/logs/{dataset}/import_dataset.log",
    benchmark:
        "results/benchmarks/{dataset}/import_dataset.tsv"
    conda:
        "../../envs/import.yaml"
    threads: 1
    resources:
        mem_mb=scaled(2000),
        runtime=scaled(120),
    params:
        dataset=get_import_config,
        manifest=get_import_manifest,
    script:
        "../scripts/import_dataset.py"
