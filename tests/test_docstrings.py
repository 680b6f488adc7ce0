"""Public names are documented (numpydoc sections) and their examples run."""

import doctest
import importlib
import inspect

import pytest

PUBLIC_MODULES = [
    "skhypergrad.hypergrad",
    "skhypergrad.hyperparams",
    "skhypergrad.callbacks",
    "skhypergrad.model_selection",
    "skhypergrad.exceptions",
    "skhypergrad.families",
    "skhypergrad.bilevel",
    "skhypergrad.plotting",
]
DOCTEST_MODULES = [
    "skhypergrad.hypergrad._hypergradient",
    "skhypergrad.hyperparams",
    "skhypergrad.callbacks",
    "skhypergrad.model_selection._search",
    "skhypergrad.model_selection._single_fit",
    "skhypergrad.datasets",
    "skhypergrad.families.weight_decay",
    "skhypergrad.families.dropout",
    "skhypergrad.hypergrad._solvers",
]


def _public_objects():
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.isfunction(obj) or inspect.isclass(obj):
                yield f"{module_name}.{name}", obj


@pytest.mark.parametrize(("name", "obj"), list(_public_objects()))
def test_public_object_has_numpydoc_docstring(name, obj):
    doc = inspect.getdoc(obj)
    assert doc, f"{name} has no docstring"
    summary = doc.splitlines()[0]
    assert summary.endswith("."), f"{name}: summary line must end with a period"
    if inspect.isclass(obj) and issubclass(obj, BaseException):
        return
    if inspect.signature(obj).parameters:
        # NamedTuples document their fields as Attributes.
        sections = ("Parameters\n----------", "Attributes\n----------")
        assert any(s in doc for s in sections), f"{name} lacks a Parameters section"


@pytest.mark.parametrize("module_name", DOCTEST_MODULES)
def test_docstring_examples_run(module_name):
    module = importlib.import_module(module_name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
