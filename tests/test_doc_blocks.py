"""Every Python block of the README and the docs pages runs, or says why not.

Which blocks: every fenced ```` ```python ```` block of ``README.md`` and
``docs/*.md`` (``docs/benchmarks.md`` aside: its commands are the benchmark
scripts'), and every ``.. code-block:: python`` of ``docs/*.rst``. Each block
is one test, with the id ``page:line`` (the line of its fence).

A block is run unless the line right before its fence says otherwise, with a
comment that neither GitHub nor the Sphinx build (MyST) shows:

- ``<!-- fragment -->`` (in a ``.rst`` page, the comment ``.. fragment``
  with a blank line before the directive): a piece of code that does not run
  on its own (it names a ``net`` or a ``space`` it does not define, or elides
  arguments with ``...``). A reason may follow a colon,
  ``<!-- fragment: needs a GPU -->``. Fragments are not run.
- ``<!-- example: NAME (tests/test_docs.py runs this block) -->``: a block that
  a test of its own in ``tests/test_docs.py`` runs and checks (the README's
  first search; the Dask and Ray blocks, which need a cluster and are
  ``slow``). Not run here; ``tests/test_docs.py`` must still name ``NAME``.
- ``<!-- slow -->``: run only with ``pytest -m slow`` (the halving search, the
  dataset distiller).

The blocks of one page run in order in one namespace, as a reader runs them in
one session: a block may use what the page's earlier blocks defined (the user
guide's first block sets up the network, the data and a space that its later
blocks use). So a block never depends on a fragment or on a block run
elsewhere, which are not run here, nor on a slow block, which the default run
leaves out. Running one block alone (``-k``) first runs the page's earlier
blocks; in a whole run each block runs once.

Each page runs in a temporary directory (a block may write files), as
``__main__``, with warnings turned into errors (skorch's own deprecation
warnings aside): a page's example should run quietly, and a warning it is
meant to show belongs in its text. A block whose import of a package outside
skhypergrad's requirements fails is skipped with the package's name.

Beside the runs: no block, fragments included, passes a refused (renamed)
argument to a search; no page, example or docstring uses an old option name or
speaks of issues, previous code or earlier runs (the labelled "renamed options"
note of the user guide aside); and the benchmark scripts and results files a
page cites exist.
"""

from __future__ import annotations

import ast
import os
import re
import textwrap
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
PAGES = [
    ROOT / "README.md",
    *sorted(p for p in (ROOT / "docs").glob("*.md") if p.name != "benchmarks.md"),
    *sorted((ROOT / "docs").glob("*.rst")),
]
COVERED_BY = ROOT / "tests" / "test_docs.py"

# The arguments the searches refuse (renamed options), as a search argument.
REFUSED = {
    "hyper_lr",
    "hyper_lr_schedule",
    "hyper_interval",
    "hyper_batch_size",
    "hyper_betas",
    "warmup",
    "average_last",
}
ESTIMATORS = {
    "HypergradSearchCV",
    "HalvingHypergradSearchCV",
    "HypergradClassifier",
    "HypergradRegressor",
}

_MD_FENCE = re.compile(r"^```\s*(\{code-block\}\s*)?(python|py|python3)\s*$")
_RST_FENCE = re.compile(r"^\.\. (code-block|code|sourcecode)::\s*(python|py)\s*$")
_MARK = re.compile(r"^<!--\s*(fragment|slow|example)\b:?\s*(.*?)\s*-->\s*$")
_RST_MARK = re.compile(r"^\.\.\s+(fragment|slow)\b:?\s*(.*)$")


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # 1-based line of the fence
    code: str
    kind: str  # "run", "fragment", "slow" or "example"
    note: str

    @property
    def id(self):
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def _md_blocks(page, lines):
    i = 0
    while i < len(lines):
        if _MD_FENCE.match(lines[i]):
            start = i
            end = next(j for j in range(i + 1, len(lines)) if lines[j] == "```")
            yield start, "\n".join(lines[start + 1 : end]) + "\n", lines[start - 1]
            i = end
        i += 1


def _rst_blocks(page, lines):
    for start, line in enumerate(lines):
        if _RST_FENCE.match(line):
            body = []
            for text in lines[start + 1 :]:
                if text and not text.startswith(" "):
                    break
                body.append(text)
            code = "\n".join(body).strip("\n")
            # A comment needs a blank line before the directive in rst.
            before = next((s for s in lines[start - 1 :: -1] if s.strip()), "")
            yield start, textwrap.dedent(code) + "\n", before


def _kind(page, before):
    mark = (_RST_MARK if page.suffix == ".rst" else _MARK).match(before.strip())
    if not mark:
        return "run", ""
    return mark.group(1), mark.group(2)


def blocks(page):
    lines = page.read_text().splitlines()
    found = _rst_blocks if page.suffix == ".rst" else _md_blocks
    for start, code, before in found(page, lines):
        kind, note = _kind(page, before)
        yield Block(page, start + 1, code, kind, note)


ALL_BLOCKS = [b for page in PAGES for b in blocks(page)]


def _param(block):
    marks = [pytest.mark.slow] if block.kind == "slow" else []
    return pytest.param(block, id=block.id, marks=marks)


class _Page:
    """The namespace of one page's blocks, run in order."""

    def __init__(self, directory):
        self.directory = directory
        self.namespace = {"__name__": "__main__"}
        self.ran = []  # the page's blocks run so far, in order


_PAGES: dict[Path, _Page] = {}


def _run(block, namespace, directory, strict):
    previous = Path.cwd()
    os.chdir(directory)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error" if strict else "ignore")
            # skorch's own deprecations of torch's API are not the page's.
            warnings.filterwarnings(
                "ignore", category=DeprecationWarning, module=r"skorch(\.|$)"
            )
            exec(compile(block.code, block.id, "exec"), namespace)
    except ModuleNotFoundError as exc:
        if exc.name and not exc.name.startswith(("skhypergrad", "sklearn", "torch")):
            pytest.skip(f"{block.id} needs {exc.name}, which is not installed")
        raise
    finally:
        os.chdir(previous)


def _before(block):
    """The page's blocks that run before ``block``: a slow block is run before
    another only in a slow run, so the default run never depends on one."""
    kinds = ("run", "slow") if block.kind == "slow" else ("run",)
    page = [b for b in ALL_BLOCKS if b.page == block.page]
    return [b for b in page[: page.index(block)] if b.kind in kinds]


@pytest.mark.parametrize(
    "block", [_param(b) for b in ALL_BLOCKS if b.kind in ("run", "slow")]
)
def test_block_runs(block, tmp_path_factory, capsys):
    before = _before(block)
    page = _PAGES.get(block.page)
    if page is None or page.ran != before[: len(page.ran)]:
        page = _PAGES[block.page] = _Page(tmp_path_factory.mktemp("page"))
    for earlier in before[len(page.ran) :]:  # not run yet in this session
        _run(earlier, page.namespace, page.directory, strict=False)
        page.ran.append(earlier)
    _run(block, page.namespace, page.directory, strict=True)
    page.ran.append(block)
    capsys.readouterr()  # what a block prints is for its reader


@pytest.mark.parametrize(
    "block", [_param(b) for b in ALL_BLOCKS if b.kind == "example"]
)
def test_covered_block_is_run_elsewhere(block):
    name = block.note.split()[0]
    assert "tests/test_docs.py" in block.note, block.note
    covered = COVERED_BY.read_text()
    assert f'"{name}"' in covered or f"example: {name}" in covered, (
        f"{block.id} says tests/test_docs.py runs it as {name!r}, "
        "which that file does not name"
    )


def _refused_arguments(code):
    """``(line, name)`` of each refused keyword given to a search."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return None
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = (
                func.attr
                if isinstance(func, ast.Attribute)
                else getattr(func, "id", None)
            )
            if name in ESTIMATORS:
                found += [
                    (node.lineno, k.arg) for k in node.keywords if k.arg in REFUSED
                ]
    return found


@pytest.mark.parametrize("block", [pytest.param(b, id=b.id) for b in ALL_BLOCKS])
def test_block_uses_todays_argument_names(block):
    refused = _refused_arguments(block.code)
    if refused is None:
        assert block.kind == "fragment", f"{block.id} is not valid Python"
        return
    assert refused == [], (
        f"{block.id} passes {refused} to a search: these are options of "
        "hyper_optimizer now (hyper_optimizer__lr=..., or "
        "hyper_optimizer=OuterOptimizer(lr=..., warmup=...))"
    )


def test_every_page_has_blocks_found():
    """The parser sees the blocks a page has (no fence spelled otherwise)."""
    for page in PAGES:
        text = page.read_text()
        fences = len(re.findall(r"^```\s*(?:\{code-block\}\s*)?py", text, re.M))
        fences += len(re.findall(r"^\.\. (?:code-block|code|sourcecode)::", text, re.M))
        assert fences == sum(b.page == page for b in ALL_BLOCKS), page.name


# Old option names as written in prose, and the notebook's words: a reference
# page states what is, not what an issue, a previous code or an earlier run
# said. The labelled note that maps old names to new ones for upgrading users
# sits between <!-- renamed options --> and <!-- /renamed options -->.
_STALE = re.compile(
    r"\bhyper_(?:lr_schedule|interval|batch_size|betas)\b|\bhyper_lr\s*="
    r"|\bissues? \d+|\bissue #|previous (?:code|runs?|defaults?)|earlier runs?"
    r"|git show"
)
_NOTE = re.compile(r"<!-- renamed options -->.*?<!-- /renamed options -->", re.S)


def _docstrings():
    for path in sorted((ROOT / "skhypergrad").rglob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(
                node,
                ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef,
            ):
                doc = ast.get_docstring(node, clean=False)
                if doc:
                    line = node.body[0].lineno
                    yield f"{path.relative_to(ROOT)}:{line}", doc


def _texts():
    for page in PAGES:
        yield str(page.relative_to(ROOT)), _NOTE.sub("", page.read_text())
    for path in sorted((ROOT / "examples").glob("*.py")):
        yield str(path.relative_to(ROOT)), path.read_text()
    yield from _docstrings()


def test_no_refused_or_stale_names():
    stale = [
        f"{where}: {match.group(0)!r}"
        for where, text in _texts()
        for match in _STALE.finditer(text)
    ]
    assert stale == []


def test_cited_benchmark_files_exist():
    """A script or results file a page cites as a measurement is still there
    (``bench_x.py`` under ``benchmarks/``; ``→ `x.json``` or
    ``benchmarks/results/x.json`` under ``benchmarks/results/``)."""
    missing = []
    for page in PAGES:
        text = page.read_text()
        scripts = re.findall(r"\b(bench_\w+\.py)\b", text)
        results = re.findall(r"(?:→ `|benchmarks/results/)(\w+\.json)", text)
        missing += [
            f"{page.name}: {name}"
            for name in sorted(set(scripts))
            if not (ROOT / "benchmarks" / name).exists()
        ]
        missing += [
            f"{page.name}: {name}"
            for name in sorted(set(results))
            if not (ROOT / "benchmarks" / "results" / name).exists()
        ]
    assert missing == []
