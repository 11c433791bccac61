import yaml

with open(snakemake.output[0], "w") as handle:
    yaml.safe_dump(dict(snakemake.params.config), handle, sort_keys=False)
with open(snakemake.log[0], "w") as handle:
    handle.write(f"wrote {snakemake.output[0]}\n")
