"""Per-rule and total wall time of the last workflow run, from Snakemake's benchmark files.

.venv/bin/python bench/pipeline_times.py [results]
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd


def main() -> None:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "results") / "benchmarks"
    rows = []
    for path in sorted(root.rglob("*.tsv")):
        parts = path.relative_to(root).with_suffix("").parts
        seconds = float(pd.read_csv(path, sep="\t")["s"].iloc[-1])
        rows.append({"rule": parts[-1], "job": "/".join(parts[:-1]) or "-", "seconds": seconds})
    if not rows:
        raise SystemExit(f"no benchmark files under {root}: run the workflow first")
    table = pd.DataFrame(rows)
    per_rule = (
        table.groupby("rule")["seconds"].agg(["count", "sum"]).sort_values("sum", ascending=False)
    )
    per_rule = per_rule.rename(columns={"count": "jobs", "sum": "seconds"})
    per_rule["seconds"] = per_rule["seconds"].round(1).astype(str)
    print(per_rule.to_markdown())
    print(
        f"\nsum over {len(table)} jobs: {table['seconds'].sum():.0f} s "
        f"({table['seconds'].sum() / 60:.1f} min of job time)"
    )


if __name__ == "__main__":
    main()
