"""CONTRIBUTING's layout and the package's own index name what tasks/ holds: every module and
package there, and nothing that is not."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TASKS = ROOT / "tasks"


def _in_tasks() -> set[str]:
    """tasks/'s own entries as the layout names them: modules and files, packages with a slash."""
    return {
        f"{p.name}/" if p.is_dir() else p.name
        for p in TASKS.iterdir()
        if p.name != "__pycache__" and not p.name.endswith(".pyc")
    }


def _contributing_layout() -> set[str]:
    text = (ROOT / "CONTRIBUTING.md").read_text()
    block = text.split("\n    tasks/\n", 1)[1].split("\n    tests/", 1)[0]
    return {line.split()[0] for line in block.splitlines() if re.match(r"^      \S", line)}


def test_contributings_layout_names_every_entry_of_tasks_and_no_other() -> None:
    assert _contributing_layout() == _in_tasks()


def test_the_packages_index_names_every_module_of_tasks() -> None:
    index = (TASKS / "__init__.py").read_text().split('"""')[1]
    named = set(re.findall(r":mod:`stagegate\.(\w+)", index))
    modules = {p.stem for p in TASKS.iterdir() if p.suffix == ".py" or (p / "__init__.py").is_file()}
    assert named == modules - {"__init__", "__main__"}
