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
        "sample_weights.py",
        "_vectors.py",
        "_format.py",
        "_callback_base.py",
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


# The layers, bottom to top (CONTRIBUTING.md, "The layers"): the hyperparameter
# definitions and penalties, the skorch glue, the families, the estimators.
# Each file may import its own layer and those below, never one above.
LAYERS = {
    "hyperparams.py": 0,
    "penalties.py": 0,
    "net.py": 1,
    "callbacks.py": 1,
    "bilevel.py": 1,
    "families": 2,
    "model_selection": 3,
}


def _layer(module):
    """The layer of a module named relative to the package (``..families``)."""
    parts = module.lstrip(".").split(".")
    head = parts[0] if parts[0] in LAYERS else parts[0] + ".py"
    return LAYERS.get(head)


LAYERED_FILES = [
    path
    for path in sorted(PACKAGE.rglob("*.py"))
    if _layer(str(path.relative_to(PACKAGE)).replace("/", ".").removesuffix(".py"))
    is not None
]


@pytest.mark.parametrize(
    "path", LAYERED_FILES, ids=lambda p: str(p.relative_to(PACKAGE))
)
def test_imports_flow_downwards_through_the_layers(path):
    own = _layer(str(path.relative_to(PACKAGE)).replace("/", ".").removesuffix(".py"))
    upward = []
    for module in _relative_imports(path):
        if not module.startswith("."):
            continue
        depth = len(module) - len(module.lstrip("."))
        inside = path.parent != PACKAGE and depth == 1  # a sibling in a subpackage
        layer = None if inside else _layer(module)
        if layer is not None and layer > own:
            upward.append(module)

    assert not upward, f"{path.relative_to(PACKAGE)} imports {upward} from above"


FAMILY_NAMES = sorted(
    name
    for name in __import__("skhypergrad.families", fromlist=["x"]).__all__
    if name[0].isupper() and name not in {"Binding", "Hyperparameter", "SplitValues"}
) + ["SampleWeight", "InputNoise", "WeightDecayPenalty"]


@pytest.mark.parametrize(
    "path",
    sorted((PACKAGE / "model_selection").rglob("*.py")),
    ids=lambda p: p.name,
)
def test_the_search_names_no_family_and_no_family_module(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    names |= {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    names |= {
        alias.name
        for n in ast.walk(tree)
        if isinstance(n, ast.ImportFrom)
        for alias in n.names
    }
    modules = [
        m for m in _relative_imports(path) if m.lstrip(".").startswith("families.")
    ]

    assert not (names & set(FAMILY_NAMES)), sorted(names & set(FAMILY_NAMES))
    assert not modules, modules


ESTIMATOR_MODULES = ("_search", "_halving", "_single_fit")


@pytest.mark.parametrize(
    "path",
    sorted((PACKAGE / "model_selection" / "_training").glob("*.py")),
    ids=lambda p: p.name,
)
def test_the_training_machinery_never_imports_the_estimators(path):
    reached = [
        m
        for m in _relative_imports(path)
        if m.startswith("..") and m.lstrip(".").split(".")[0] in ESTIMATOR_MODULES
    ]
    assert not reached, f"{path.name} imports {reached}"


@pytest.mark.parametrize(
    "path", sorted((PACKAGE / "distillation").glob("*.py")), ids=lambda p: p.name
)
def test_the_distiller_sits_outside_the_search_code(path):
    reached = [m for m in _relative_imports(path) if "model_selection" in m]
    assert not reached, f"{path.name} imports {reached}"
