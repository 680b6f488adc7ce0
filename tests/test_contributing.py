"""The maintainer guide's module map names every module of the package."""

import re
from pathlib import Path

ROOT = Path(__file__).parents[1]


def test_every_package_module_is_in_the_module_map():
    guide = (ROOT / "CONTRIBUTING.md").read_text()
    listed = set(re.findall(r"^\| `(skhypergrad/[\w/]+\.py)` \|", guide, re.M))
    modules = {p.relative_to(ROOT).as_posix() for p in ROOT.glob("skhypergrad/**/*.py")}
    assert sorted(modules - listed) == []  # add a line for each new module
    assert sorted(listed - modules) == []  # and drop the lines of removed ones
