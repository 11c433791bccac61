"""How a rule's script runs its stage: one name for the rule, its script and its function.

Every rule ``name`` in workflow/rules/<family>.smk has the script
workflow/scripts/<name>.py, which runs the function ``name`` of
``saldissect.<family>.stages``::

    from saldissect.core.stage import run
    from saldissect.training.stages import train_phase2

    run(snakemake, train_phase2)

A stage function takes the rule's named inputs, outputs and params as
mappings (``input["val"]``, ``output["model"]``, ``params["model"]``), so a
path is found by its name in the rule, never by its position, and a name the
rule does not give fails at once with that name. Notebooks and tests call
stage functions with plain dicts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from saldissect.core.errors import setup

#: A rule's named inputs or outputs (paths, or lists of paths), by name.
Files = Mapping[str, Any]
#: A rule's params (or wildcards), by name.
Params = Mapping[str, Any]
Stage = Callable[..., None]


def named(items) -> dict[str, Any]:
    """Snakemake's named lists (``snakemake.input`` and the like) as a plain dict."""
    return dict(items.items())


def run(snakemake, stage: Stage) -> None:
    """Run ``stage`` as the job ``snakemake`` (the object Snakemake gives a script)
    describes: its log set up (`errors.setup`), then
    ``stage(input, output, params, threads=..., wildcards=...)``."""
    if stage.__name__ != snakemake.rule:
        raise RuntimeError(
            f"rule {snakemake.rule} runs the stage {stage.__name__}: a rule's script and "
            "stage function carry the rule's name"
        )
    setup(snakemake.log[0], snakemake.threads)
    stage(
        named(snakemake.input),
        named(snakemake.output),
        named(snakemake.params),
        threads=snakemake.threads,
        wildcards=named(snakemake.wildcards),
    )
