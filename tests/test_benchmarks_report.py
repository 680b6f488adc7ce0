"""Every table of docs/benchmarks.md and README.md written by
benchmarks/report.py matches the saved results it was written from."""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
_spec = importlib.util.spec_from_file_location(
    "report", ROOT / "benchmarks" / "report.py"
)
report = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(report)

PAGES = {page.name: report.markers(page.read_text()) for page in report.PAGES}
ON_PAGES = [(page, name) for page, found in PAGES.items() for name in found]


@pytest.mark.parametrize(("page", "name"), ON_PAGES, ids="/".join)
def test_page_table_matches_its_results_file(page, name):
    assert name in report.TABLES, f"{page}: no report function for {name!r}"
    assert PAGES[page][name] == report.TABLES[name]().strip(), (
        f"{page}'s table {name!r} differs from its results file: "
        "run python benchmarks/report.py --write"
    )


@pytest.mark.parametrize("name", sorted(report.TABLES))
def test_every_report_table_is_on_a_page(name):
    assert any(name in found for found in PAGES.values())


def test_write_restores_a_table_that_drifted():
    page = report.PAGES[0].read_text()
    table = report.TABLES["peers"]().strip()
    drifted = page.replace(table, table.replace("0.", "9.", 1))
    assert drifted != page
    assert report.markers(drifted)["peers"] != table
    assert report.rewrite(drifted) == page
