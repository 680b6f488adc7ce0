"""The engine and the exceptions load, and are written, without sklearn or skorch."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import skhypergrad

PACKAGE = Path(skhypergrad.__file__).parent
FORBIDDEN = ("sklearn", "skorch")
# The engine, and the modules of skhypergrad that it imports.
TORCH_ONLY_FILES = sorted((PACKAGE / "hypergrad").rglob("*.py")) + [
    PACKAGE / "exceptions.py",
    PACKAGE / "_typing.py",
]


def _imported_modules(path):
    """Return the absolute module names imported anywhere in the file at ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            yield node.module


def _is_forbidden(module):
    return module.split(".")[0] in FORBIDDEN


def test_importing_the_engine_loads_no_sklearn_or_skorch():
    code = (
        "import sys, skhypergrad.hypergrad, skhypergrad.exceptions; "
        f"print(sorted(m for m in sys.modules if m.startswith({FORBIDDEN!r})))"
    )

    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=PACKAGE.parent,
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize(
    "path", TORCH_ONLY_FILES, ids=lambda p: str(p.relative_to(PACKAGE))
)
def test_torch_only_file_does_not_import_sklearn_or_skorch(path):
    forbidden = [m for m in _imported_modules(path) if _is_forbidden(m)]

    assert not forbidden, f"{path.name} imports {forbidden}"


def test_torch_only_files_are_found():
    # Guards the parametrization above against a moved package.
    names = {p.name for p in TORCH_ONLY_FILES}
    assert {"_hypergradient.py", "_linear_solve.py", "exceptions.py"} <= names


# Below the estimators: the hyperparameter definitions, the skorch glue and
# the families never reach up into the scikit-learn estimators.
LOWER_LAYER_FILES = [
    PACKAGE / name
    for name in (
        "hyperparams.py",
        "penalties.py",
        "net.py",
        "callbacks.py",
        "bilevel.py",
    )
] + sorted((PACKAGE / "families").rglob("*.py"))


def _relative_imports(path):
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            yield ("." * node.level) + (node.module or "")
        elif isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)


@pytest.mark.parametrize(
    "path", LOWER_LAYER_FILES, ids=lambda p: str(p.relative_to(PACKAGE))
)
def test_lower_layers_do_not_import_the_estimators(path):
    upward = [m for m in _relative_imports(path) if "model_selection" in m]

    assert not upward, f"{path.name} imports {upward}"
