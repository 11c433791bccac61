"""`snakemake sweep` (docs/method.md 8.7): the workflow run on another world in its
own folder, its recovery table stacked, nothing written outside results/sweep/."""

import pandas as pd
import pytest
import yaml
from test_workflow import TINY, snakemake


@pytest.mark.slow(seconds=90)
def test_the_sweep_runs_a_world_in_its_own_folder(workflow_dir):
    config = yaml.safe_load(TINY)
    config["sweep"] = {"seeds": [5], "permutations": [], "no_pair_seeds": [], "controls": 0}
    (workflow_dir / "sweep.yaml").write_text(yaml.safe_dump(config))
    run = snakemake(workflow_dir, "sweep", configfile="sweep.yaml")
    assert run.returncode == 0, run.stderr[-3000:]
    results = workflow_dir / "results"
    table = pd.read_csv(results / "sweep/tables/recovery.csv")
    assert set(table["world"]) == {"seed5"} and set(table["control"]) == {"none"}
    assert set(table["readout"]) == {"top-k IoU", "contrast", "regression"}
    world = yaml.safe_load((results / "sweep/seed5/work/world.yaml").read_text())
    assert world["synthetic"]["seed"] == 5 and world["synthetic"]["n_train"] == 48
    assert "seed5" in (results / "sweep/tables/recovery.md").read_text()
    assert not (results / "synthetic").exists()  # the run's own results are not touched
