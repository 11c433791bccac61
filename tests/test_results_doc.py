"""docs/results.md is what bench/results_doc.py writes from the stored bench records."""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("results_doc", ROOT / "bench/results_doc.py")
results_doc = importlib.util.module_from_spec(spec)
spec.loader.exec_module(results_doc)


def test_the_results_document_is_generated_from_the_records():
    assert (ROOT / "docs/results.md").read_text() == results_doc.document(), (
        "docs/results.md is stale: run .venv/bin/python bench/results_doc.py"
    )


def test_every_record_says_when_where_and_at_which_commit():
    records = sorted((ROOT / "bench/results").glob("*.md"))
    assert len(records) >= 8
    for path in records:
        header, body = results_doc.read(path)
        assert header["date"].startswith("2026-") and header["commit"] and body, path


def test_a_record_without_its_date_is_refused(tmp_path):
    record = tmp_path / "x.md"
    record.write_text("command: bench/x.py\ncommit: abc\nmachine: cpu\n\nbody\n")
    with pytest.raises(ValueError, match="no date"):
        results_doc.read(record)
