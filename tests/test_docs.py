"""The API reference lists every public name (.ci/run builds the docs)."""

import re
from pathlib import Path

import pytest

import skhypergrad
from skhypergrad import hypergrad, plotting

API = Path(__file__).parents[1] / "docs" / "api.rst"


def _listed():
    text = API.read_text()
    return {line.strip().rsplit(".", 1)[-1] for line in text.splitlines()} | set(
        re.findall(r"``(?:skhypergrad\.)?(?:\w+\.)*(\w+)``", text)
    )


@pytest.mark.parametrize(
    "module", [skhypergrad, hypergrad, plotting], ids=lambda m: m.__name__
)
def test_api_reference_lists_every_public_name(module):
    public = set(module.__all__) - {"__version__"}
    assert sorted(public - _listed()) == []


def test_readme_says_how_to_serve_the_built_pages():
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    build = readme.index("sphinx-build -W -b html docs docs/_build/html")
    # Right after the build command: a way that works without a browser.
    assert "python -m http.server -d docs/_build/html" in readme[build : build + 300]
    assert "python -m webbrowser" not in readme


def _readme_example():
    """The python block after ``<!-- example: readme ...-->`` in the README."""
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    after = readme.split("<!-- example: readme", 1)[1]
    return after.split("```python\n", 1)[1].split("```", 1)[0]


def test_readme_first_example_runs_as_written(capsys, monkeypatch, tmp_path):
    import warnings

    monkeypatch.chdir(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the first example a user runs is quiet
        exec(compile(_readme_example(), "README.md", "exec"), {"__name__": "__main__"})
    out = capsys.readouterr().out
    # What the README says a user sees: the tuned decay, the scores, 8 rows.
    assert "'optimizer__weight_decay':" in out
    cv, test = re.search(
        r"CV accuracy (\d\.\d+), test accuracy (\d\.\d+)", out
    ).groups()
    assert float(cv) > 0.9
    assert float(test) > 0.9
    rows = [line for line in out.splitlines() if re.match(r"\s+0\.0(03|10)\s", line)]
    assert len(rows) == 8  # 2 lr x 2 widths x 2 max_epochs


def _marked_example(page, name):
    """The python block after ``<!-- example: name ...-->`` on a docs page."""
    text = (Path(__file__).parents[1] / "docs" / page).read_text()
    after = text.split(f"<!-- example: {name}", 1)[1]
    return after.split("```python\n", 1)[1].split("```", 1)[0]


def _run_script(code, tmp_path):
    import subprocess
    import sys

    script = tmp_path / "example.py"
    script.write_text(code)
    result = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.mark.slow
def test_clusters_page_dask_example_runs_as_written(tmp_path):
    pytest.importorskip("distributed")
    out = _run_script(_marked_example("clusters_and_gpus.md", "dask"), tmp_path)

    width, score = re.search(r"grid: (\d+) (\d\.\d+)", out).groups()
    assert width in {"32", "64"}
    assert float(score) > 0.85
    steps, score = re.search(r"ranges: (\d+) hyper-steps, (\d\.\d+)", out).groups()
    assert int(steps) > 0
    assert float(score) > 0.85


@pytest.mark.slow
def test_clusters_page_ray_example_runs_as_written(tmp_path):
    pytest.importorskip("ray")
    definitions = _marked_example("clusters_and_gpus.md", "dask").split(
        'if __name__ == "__main__":'
    )[0]
    ray_block = _marked_example("clusters_and_gpus.md", "ray")
    out = _run_script(definitions + ray_block, tmp_path)

    width, score = re.search(r"grid: (\d+) (\d\.\d+)", out).groups()
    assert width in {"32", "64"}
    assert float(score) > 0.85
