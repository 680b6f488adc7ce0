"""A table of docs/benchmarks.md written by benchmarks/report.py matches the
saved results it was written from."""

import importlib.util
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
PAGE = (ROOT / "docs" / "benchmarks.md").read_text()
_spec = importlib.util.spec_from_file_location(
    "report", ROOT / "benchmarks" / "report.py"
)
report = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(report)


@pytest.mark.parametrize("name", sorted(report.TABLES))
def test_page_table_matches_its_results_file(name):
    found = re.search(
        rf"<!-- report: {re.escape(name)} -->\n(.*?)\n<!-- /report -->", PAGE, re.S
    )
    assert found, f"docs/benchmarks.md has no table {name!r}"
    assert found.group(1).strip() == report.TABLES[name]().strip()
