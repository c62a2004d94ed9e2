"""Helpers of the integration tests: stages run in-process on scratch repositories."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from python_on_whales import DockerClient
from python_on_whales.exceptions import DockerException
from stagegate.pipeline import run_stage
from stagegate.targets.docker import DockerTarget
from stagegate.ui import Reporter

from tests.conftest import (
    REQUIRE_DOCKER,
    ROOT,
    TEST_PREFIX,
    Repo,
    listed_meanwhile,
    remove_images_at_the_end,
    signallable,
)

# Never inherited by the runs of a test: its own artifacts dir, and no annotations or job
# summary in the CI that runs the tests (the failures here are on purpose).
ISOLATED = ("STAGEGATE_ARTIFACTS", "GITHUB_ACTIONS", "GITHUB_STEP_SUMMARY")


def run(repo: Repo, stage: str, *argv: str, docker: DockerClient, reporter: Reporter) -> int:
    env = {k: v for k, v in os.environ.items() if k not in ISOLATED}
    return run_stage(stage, list(argv), root=repo.root, reporter=reporter, docker=docker, env=env).exit_code


def pipeline(repo: Repo, *argv: str, docker: DockerClient, reporter: Reporter) -> int:
    """preflight then build, as ``nox -s build`` runs them."""
    return run(repo, "preflight", *argv, docker=docker, reporter=reporter) or run(
        repo, "build", *argv, docker=docker, reporter=reporter
    )


def images(repo: Repo) -> dict[str, dict]:
    return repo.run_record()["stages"]["build"]["outputs"]["images"]


def unique_prefix() -> str:
    """Image names of one test (under this run's prefix), so that tests never see each
    other's tags, nor those of another checkout's run on the same engine."""
    return f"{TEST_PREFIX}-{secrets.token_hex(4)}"


@pytest.fixture
def ns() -> str:
    return unique_prefix()


@pytest.fixture(autouse=True)
def _remove_test_images(docker: DockerClient, ns: str):
    yield
    remove_images_at_the_end(ns)


def image_table(ns: str, *entries: tuple[str, str]) -> str:
    return "".join(
        f'[[tool.stagegate.images]]\nname = "{ns}/{name}"\ncontext = "{context}"\n\n'
        for name, context in entries
    )


# -- a real registry (Debian's docker-registry: the CNCF distribution registry) ------------------


class Registry:
    """One ``docker-registry serve`` on 127.0.0.1, with its own storage, config and log.

    ``uploads()`` counts the blob upload requests in its access log: how a test sees what a
    push really sent (a layer already there is never uploaded)."""

    def __init__(self, base: Path, *, htpasswd: Path | None = None) -> None:
        self.base = base
        self.htpasswd = htpasswd
        self.port = _free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.log = base / "registry.log"
        self.process: subprocess.Popen | None = None
        config: dict = {
            "version": 0.1,
            "log": {"level": "info", "accesslog": {"disabled": False}},
            "storage": {"filesystem": {"rootdirectory": str(base / "data")}, "delete": {"enabled": True}},
            "http": {"addr": self.host},
        }
        if htpasswd is not None:
            config["auth"] = {"htpasswd": {"realm": "stagegate-tests", "path": str(htpasswd)}}
        self.config = base / "config.yml"
        self.config.write_text(yaml.safe_dump(config))

    def start(self) -> Registry:
        binary = shutil.which("docker-registry")
        if binary is None:
            # CI (STAGEGATE_REQUIRE_DOCKER=1) must run the registry tests: a missing registry fails there
            (pytest.fail if REQUIRE_DOCKER else pytest.skip)(
                "docker-registry is not installed (apt-get install docker-registry; .ci/run does)"
            )
        with open(self.log, "ab") as log:
            self.process = signallable(
                [binary, "serve", str(self.config)], stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                if self.process.poll() is not None:
                    break
                time.sleep(0.05)
        raise RuntimeError(f"docker-registry did not start: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def access_lines(self) -> list[str]:
        return [
            line
            for line in self.log.read_text(errors="replace").splitlines()
            if '"' in line and " - " in line and "HTTP/1.1" in line
        ]

    def uploads(self) -> int:
        """Blob upload requests (POST/PATCH/PUT on .../blobs/uploads/) answered so far."""
        return sum(1 for line in self.access_lines() if "/blobs/uploads/" in line)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A registry without auth, for the whole session."""
    running = Registry(tmp_path_factory.mktemp("registry")).start()
    yield running
    running.stop()


REGISTRY_USER = "stagegate"


@pytest.fixture(scope="session")
def auth_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Registry, str]]:
    """A registry with htpasswd (bcrypt) auth; yields it and the password of REGISTRY_USER."""
    htpasswd = shutil.which("htpasswd")
    if htpasswd is None:
        (pytest.fail if REQUIRE_DOCKER else pytest.skip)(
            "htpasswd is not installed (apt-get install apache2-utils; .ci/run does)"
        )
    base = tmp_path_factory.mktemp("auth-registry")
    password = secrets.token_hex(12)
    subprocess.run(
        [htpasswd, "-Bbc", str(base / "htpasswd"), REGISTRY_USER, password], check=True, capture_output=True
    )
    running = Registry(base, htpasswd=base / "htpasswd").start()
    yield running, password
    running.stop()


@pytest.fixture
def target(docker: DockerClient, ns: str, tmp_path: Path) -> Iterator[DockerTarget]:
    """A docker target driven directly (``apply``, then ``snapshot`` per poll), with back-offs of
    a fraction of a second; after its teardown nothing of it is left on the engine."""
    made = DockerTarget(
        project=ns, artifacts=tmp_path / ".stagegate", docker=docker, backoff_base=0.5, backoff_cap=4.0
    )
    made.up(recreate=False)
    yield made
    made.teardown(delete=True)
    owned = [("label", f"dev.stagegate.project={ns}")]
    assert docker.container.list(all=True, filters=owned) == []
    assert docker.volume.list(filters=owned) == []
    assert docker.image.list(filters=owned) == []


# -- the fake kind and kubectl of tests/fakes ---------------------------------------------------
FAKES = ROOT / "tests" / "fakes" / "bin"


class Fake:
    """The fake cluster's state dir and scenario."""

    def __init__(self, state: Path) -> None:
        self.state = state

    def scenario(self, **scenario) -> None:
        (self.state / "scenario.json").write_text(json.dumps(scenario))

    def records(self, tool: str, *words: str) -> list[dict]:
        """The fakes' call records (tests/fakes/README.md) of ``tool`` whose argv has ``words``."""
        lines = (
            (self.state / "calls.jsonl").read_text().splitlines()
            if (self.state / "calls.jsonl").exists()
            else []
        )
        calls = [json.loads(line) for line in lines]
        return [c for c in calls if c["tool"] == tool and all(w in c["argv"] for w in words)]

    def calls(self, tool: str, *words: str) -> list[list[str]]:
        return [c["argv"] for c in self.records(tool, *words)]

    def polls_seen(self, polls: int) -> list[dict[str, float]]:
        """What the readiness waiter's first ``polls`` polls saw: for each ``kubectl get pods``
        (one per poll and namespace), the timeline entry (``at``) each pod was in, by pod name."""
        gets = self.records("kubectl", "get", "pods")[:polls]
        assert len(gets) == polls, f"{polls} polls, but {len(gets)} `kubectl get pods`"
        return [{entry["pod"]: entry["at"] for entry in get.get("served", [])} for get in gets]


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, docker: DockerClient, busybox_image: str):
    state = tmp_path / "fake-k8s"
    state.mkdir()
    monkeypatch.setenv("FAKE_K8S_STATE", str(state))
    monkeypatch.setenv("PATH", f"{FAKES}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_KIND_NODE_IMAGE", busybox_image)
    yield Fake(state)
    nodes = listed_meanwhile(
        lambda: docker.container.list(all=True, filters=[("label", "io.x-k8s.kind.cluster")])
    )  # other runs' fake clusters come and go meanwhile
    for container in nodes:
        try:
            ours = str(state) in json.dumps(container.host_config.binds or [])
        except DockerException:
            continue  # another run's node, removed meanwhile (reading an attribute inspects again)
        if ours:
            docker.container.remove(container, force=True)


@pytest.fixture
def cluster_name(ns: str) -> str:
    return ns.replace("sgtest-", "sg", 1)
