"""Run a bench script and store what it prints, with when, where and at which commit.

    .venv/bin/python bench/record.py iou_speed -- .venv/bin/python bench/iou_speed.py
    .venv/bin/python bench/record.py iou_speed_avx2 -- \
        .venv/bin/python bench/iou_speed.py --emulate-avx2

writes bench/results/<name>.md: a header (the command, the date, the commit,
``-dirty`` when the tree had uncommitted changes (other than records), the CPU, torch's version),
then the output in a code block. `bench/results_doc.py` builds
docs/results.md from these records; re-record a bench when its code or its
numbers change.
"""

from __future__ import annotations

import argparse
import datetime
import os
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench/results"
NOT_CODE = (":!bench/results", ":!docs/results.md")


def git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()


def commit() -> str:
    # the records and the document built from them are output, not code
    dirty = bool(git("status", "--porcelain", "--untracked-files=no", "--", ".", *NOT_CODE))
    return git("rev-parse", "--short", "HEAD") + ("-dirty" if dirty else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", help="the record's name: bench/results/<name>.md")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the bench's command")
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the bench's command after --")
    sys.path.insert(0, str(ROOT / "src"))
    import torch

    from saldissect.training.resources import cpu_model

    header = {
        "command": shlex.join(command),
        "date": datetime.date.today().isoformat(),
        "commit": commit(),
        "machine": f"{cpu_model()}, {os.cpu_count()} CPUs, torch {torch.__version__}",
    }
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{header['command']} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{args.name}.md"
    lines = [f"{key}: {value}" for key, value in header.items()]
    path.write_text("\n".join(lines) + "\n\n```\n" + done.stdout.rstrip() + "\n```\n")
    print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
