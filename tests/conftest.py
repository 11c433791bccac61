import shutil
from pathlib import Path

import pytest
import torch
from figures import saved_figures  # noqa: F401 - the fixture, for every figure test

ROOT = Path(__file__).resolve().parents[1]


def pytest_collection_modifyitems(config, items):
    """The slow end-to-end runs first, the longest first (``slow(seconds=...)``, the
    seconds measured on 2 cores), so that `make test`'s two workers (whole files
    each, in this order) never end with one of them alone on a long run."""

    def cost(item):
        mark = item.get_closest_marker("slow")
        return -mark.kwargs.get("seconds", 60) if mark else 0

    items.sort(key=cost)


@pytest.fixture(autouse=True)
def _few_threads():
    torch.set_num_threads(2)


@pytest.fixture
def workflow_dir(tmp_path: Path) -> Path:
    """A scratch copy of the workflow (Snakefile, rules, config) to run Snakemake in."""
    for name in ("Snakefile", "workflow", "config", "envs"):
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, tmp_path / name)
        else:
            shutil.copy(source, tmp_path / name)
    return tmp_path
