"""What a command pays for before it does anything: the modules it imports, read from Python's
own record of them (``python -X importtime``) while the real nox sessions run.

``nox -l`` lists the sessions without loading what they run; a build with nothing to do asks the
engine through its CLI and never imports python-on-whales (about 0.3 s on a 2-core machine);
a build that builds does import it — which shows the record would see it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, Repo, remove_images_at_the_end
from tests.integration.conftest import ISOLATED, unique_prefix

pytestmark = pytest.mark.docker

HEAVY = ("python_on_whales", "pydantic", "rich", "junitparser", "yaml")


def imported(cwd: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run ``nox ARGS`` under ``-X importtime``; the result and every module it imported."""
    env = {k: v for k, v in os.environ.items() if k not in (*ISOLATED, "NO_COLOR")}
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "nox", "--no-color", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    modules = {
        line.rsplit("|", 1)[1].strip()
        for line in result.stderr.splitlines()
        if line.startswith("import time:") and line.count("|") == 2
    }
    return result, modules


@pytest.fixture
def project(repo: Repo, busybox_image: str) -> Repo:
    """A repository using stagegate (its noxfile and tasks/) with two images, one on the other."""
    shutil.copy(ROOT / "noxfile.py", repo.root / "noxfile.py")
    shutil.copytree(ROOT / "tasks", repo.root / "tasks", ignore=shutil.ignore_patterns("__pycache__"))
    prefix = unique_prefix()
    repo.write("base/Dockerfile", f"FROM {busybox_image}\nRUN echo base > /base\n")
    repo.write("app/Dockerfile", "ARG BASE\nFROM ${BASE}\nRUN echo app > /app\n")
    repo.config(
        f'[[tool.stagegate.images]]\nname = "{prefix}/base"\ncontext = "base"\n\n'
        f'[[tool.stagegate.images]]\nname = "{prefix}/app"\ncontext = "app"\n'
        f'depends_on = ["{prefix}/base"]\nbuild_args = {{ BASE = "{prefix}/base" }}\n'
    )
    yield repo
    remove_images_at_the_end(prefix)


def test_listing_the_sessions_loads_none_of_the_libraries_they_use(project: Repo) -> None:
    result, modules = imported(project.root, "-l")

    assert result.returncode == 0, result.stderr[-2000:]
    assert "build" in result.stdout and "teardown" in result.stdout
    assert "stagegate.nox" in modules  # the record covers the noxfile's imports
    assert modules.isdisjoint(HEAVY), sorted(modules.intersection(HEAVY))


def test_a_build_with_nothing_to_do_never_imports_python_on_whales(project: Repo) -> None:
    first, first_modules = imported(project.root, "-s", "build")
    assert first.returncode == 0, first.stderr[-2000:]
    built = project.run_record()["stages"]["build"]["outputs"]["images"]
    assert {entry["status"] for entry in built.values()} == {"built"}
    assert "python_on_whales" in first_modules  # building goes through it

    again, modules = imported(project.root, "-s", "build")

    assert again.returncode == 0, again.stderr[-2000:]
    images = project.run_record()["stages"]["build"]["outputs"]["images"]
    assert {entry["status"] for entry in images.values()} == {"up to date"}
    assert "stagegate.stages.build" in modules
    assert "python_on_whales" not in modules
    # and only the stages that ran were loaded
    assert modules.isdisjoint({"stagegate.stages.deploy", "stagegate.stages.e2e", "stagegate.targets.docker"})
