"""The noxfile as users meet it: `nox -l`, and the script block that installs what it needs."""

from __future__ import annotations

import ast
import importlib.util
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ALL = [
    "preflight",
    "build",
    "verify",
    "cluster",
    "deploy",
    "e2e",
    "teardown",
    "prune",
    "report",
    "doctor",
    "init",
    "tests",
    "lint",
]


def nox_list() -> list[dict]:
    completed = subprocess.run(
        [sys.executable, "-m", "nox", "-f", str(ROOT / "noxfile.py"), "-l", "--json", "--sessions", *ALL],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return json.loads(completed.stdout)


def test_every_session_is_listed_with_a_one_line_description() -> None:
    sessions = {entry["session"]: entry["description"] for entry in nox_list()}
    assert set(sessions) == set(ALL)
    for name, description in sessions.items():
        assert description and "\n" not in description, name


def test_bare_nox_runs_tests_and_lint_only() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "nox", "-f", str(ROOT / "noxfile.py"), "-l"],
        capture_output=True,
        text=True,
        check=True,
    )
    selected = set(re.findall(r"^\* (\w+)", completed.stdout, re.MULTILINE))
    assert selected == {"tests", "lint"}


def test_noxfile_script_block_installs_the_projects_dependencies() -> None:
    text = (ROOT / "noxfile.py").read_text()
    block = re.search(r"^# /// script\n(.*?)^# ///$", text, re.MULTILINE | re.DOTALL).group(1)
    script = tomllib.loads("\n".join(line.removeprefix("#").removeprefix(" ") for line in block.splitlines()))
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert sorted(script["dependencies"]) == sorted(project["dependencies"])


def test_every_package_under_tasks_installs_as_stagegate_and_nothing_as_tasks() -> None:
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert setuptools["package-dir"] == {"stagegate": "tasks"}
    on_disk = {
        ".".join(("stagegate", *init.parent.relative_to(ROOT / "tasks").parts))
        for init in (ROOT / "tasks").rglob("__init__.py")
    }
    assert set(setuptools["packages"]) == on_disk
    assert setuptools["package-data"]["stagegate"] == ["error.schema.json"]
    # the forwarder's files ship, and nothing else of its folder is left behind
    forwarder = ROOT / "tasks" / "targets" / "docker" / "tcp-forwarder"
    shipped = {
        path
        for pattern in setuptools["package-data"]["stagegate.targets.docker"]
        for path in forwarder.parent.glob(pattern)
    }
    assert shipped == {path for path in forwarder.rglob("*") if path.is_file()}
    assert {path.name for path in shipped} >= {
        "main.go",
        "tcp-forwarder-linux-amd64",
        "tcp-forwarder-linux-arm64",
    }


def test_the_library_imports_itself_relatively_so_its_installed_name_is_its_only_name() -> None:
    absolute = []
    for path in (ROOT / "tasks").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            absolute += [
                f"{path.relative_to(ROOT)}:{node.lineno}"
                for n in names
                if n.split(".")[0] in ("tasks", "stagegate")
            ]
    assert absolute == []


# -- nox's "uv binary not found." ---------------------------------------------------------------

QUIET_NOXFILE = """\
import nox
import stagegate.nox

stagegate.nox.register()


@nox.session(python=False)
def hello(session):
    session.log("hello from the session")
"""


def run_without_uv(tmp_path: Path, noxfile: str) -> subprocess.CompletedProcess[str]:
    """`nox -s hello` on a PATH without uv (the running nox already has the noxfile's
    dependencies, so it does not re-execute itself)."""
    (tmp_path / "noxfile.py").write_text(noxfile)
    path = [d for d in os.environ["PATH"].split(os.pathsep) if d and shutil.which("uv", path=d) is None]
    env = {k: v for k, v in os.environ.items() if k not in ("UV", "NOX_SCRIPT_MODE")}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), *path])
    return subprocess.run(
        [sys.executable, "-m", "nox", "-f", str(tmp_path / "noxfile.py"), "-s", "hello"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )


def test_sessions_say_nothing_about_a_missing_uv(tmp_path: Path) -> None:
    quiet = run_without_uv(tmp_path, QUIET_NOXFILE)
    assert quiet.returncode == 0, quiet.stderr
    assert "hello from the session" in quiet.stderr
    assert "uv binary not found" not in quiet.stdout + quiet.stderr

    # the same session without stagegate's sessions registered: nox says it (where uv is missing)
    if importlib.util.find_spec("uv") is None:
        plain = run_without_uv(tmp_path, QUIET_NOXFILE.replace("stagegate.nox.register()", ""))
        assert plain.returncode == 0, plain.stderr
        assert "nox > uv binary not found." in plain.stderr


def test_only_that_line_is_dropped() -> None:
    from stagegate.nox import _NoUvNotFound

    def record(message: str) -> logging.LogRecord:
        return logging.LogRecord("nox", logging.INFO, __file__, 1, message, None, None)

    quiet = _NoUvNotFound()
    assert not quiet.filter(record("uv binary not found."))
    assert quiet.filter(record("Failed to establish uv's version."))
    assert quiet.filter(record("Creating virtual environment (uv) using python3.11 in .nox/tests"))
