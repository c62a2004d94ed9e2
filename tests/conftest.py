"""Shared fixtures: a real Docker client, tiny busybox images, scratch repositories, and a
check that every error.json a test leaves behind validates against the shipped schema."""

from __future__ import annotations

import io
import json
import os
import shutil
import textwrap
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest
from python_on_whales import DockerClient
from python_on_whales.exceptions import DockerException
from rich.console import Console
from stagegate import runlock
from stagegate.ui import Reporter

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((ROOT / "tasks" / "error.schema.json").read_text())
BUSYBOX_IMAGE = "stagegate-test/busybox:1"
REQUIRE_DOCKER = os.environ.get("STAGEGATE_REQUIRE_DOCKER") == "1"


def validate_error_file(path: Path) -> dict:
    document = json.loads(path.read_text())
    jsonschema.validate(document, SCHEMA)
    return document


@pytest.fixture(autouse=True)
def _error_files_validate(tmp_path: Path) -> Iterator[None]:
    """Every error.json produced under a test's tmp_path must match tasks/error.schema.json."""
    yield
    for path in tmp_path.rglob("error.json"):
        validate_error_file(path)


@pytest.fixture(autouse=True)
def _run_locks_released() -> Iterator[None]:
    """A stage holds its artifacts dir's run lock for the life of the process; the test
    process gives each test's locks back when the test ends."""
    yield
    runlock.release_all()


@pytest.fixture(scope="session")
def docker() -> DockerClient:
    """A client of a running Docker engine; skip (or fail, in CI) without one."""
    client = DockerClient()
    try:
        client.version()
    except (DockerException, FileNotFoundError) as exc:
        message = f"no Docker engine answers: {str(exc).splitlines()[0]}"
        if REQUIRE_DOCKER:
            pytest.fail(message + " (STAGEGATE_REQUIRE_DOCKER=1 makes the Docker tests mandatory)")
        pytest.skip(message)
    return client


def _busybox_binary() -> Path:
    for candidate in ("/bin/busybox", "/usr/bin/busybox"):
        if Path(candidate).is_file():
            return Path(candidate)
    pytest.skip("static busybox is not installed (Debian package busybox-static)")


@pytest.fixture(scope="session")
def busybox_image(docker: DockerClient, tmp_path_factory: pytest.TempPathFactory) -> str:
    """``stagegate-test/busybox:1``: FROM scratch + static busybox, built once per session."""
    if not docker.image.exists(BUSYBOX_IMAGE):
        context = tmp_path_factory.mktemp("busybox")
        shutil.copy(_busybox_binary(), context / "busybox")
        (context / "Dockerfile").write_text(
            'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\n'
        )
        docker.legacy_build(context, tags=[BUSYBOX_IMAGE])
    return BUSYBOX_IMAGE


class Repo:
    """A scratch repository: pyproject.toml with [tool.stagegate] and the files it names."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.artifacts = root / ".stagegate"

    def write(self, relpath: str, text: str) -> Path:
        path = self.root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
        return path

    def config(self, text: str) -> None:
        self.write("pyproject.toml", "[tool.stagegate]\n" + textwrap.dedent(text))

    def error(self) -> dict | None:
        path = self.artifacts / "error.json"
        return validate_error_file(path) if path.exists() else None

    def run_record(self) -> dict:
        return json.loads((self.artifacts / "run.json").read_text())


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    root = tmp_path / "repo"
    root.mkdir()
    return Repo(root)


@pytest.fixture
def reporter() -> Reporter:
    """A reporter printing into memory (``reporter.console.file.getvalue()``)."""
    return Reporter(Console(file=io.StringIO(), width=120, force_terminal=False))
