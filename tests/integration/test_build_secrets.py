"""The Docker connection that drops mid-build, for real (its error carries the request URL with
the build args): reported as DOCKER_UNAVAILABLE, the secret build arg redacted in the log,
error.json, run.json, junit.xml, the job summary, the annotation and the terminal. (Which build
args are secret, and the recorded dropped connection: tests/unit/test_build_secrets.py.)"""

from __future__ import annotations

import contextlib
import io
import json
import socket
import threading
from pathlib import Path

import pytest
from python_on_whales import DockerClient
from python_on_whales.exceptions import DockerException
from rich.console import Console
from stagegate import redact
from stagegate.builder import BuildFailure, BuildRequest, LegacyBuilder
from stagegate.config import load_config
from stagegate.errors import Code
from stagegate.ledger import Ledger
from stagegate.pipeline import publish_reports
from stagegate.stages.build_image import build_error
from stagegate.ui import Reporter

from tests.conftest import LABEL_LINE, TEST_PREFIX
from tests.unit.test_build_secrets import TOKEN, repo

pytestmark = pytest.mark.docker


@pytest.fixture(autouse=True)
def _fresh_registry():
    redact.SECRETS.clear()
    yield
    redact.SECRETS.clear()


class DroppingProxy:
    """A unix socket in front of the Docker engine's that cuts every connection ``cut_after``
    seconds after it opened: the engine's connection lost mid-build, for real, without
    stopping the engine others use."""

    def __init__(self, path: Path, upstream: str, cut_after: float) -> None:
        self.path, self.upstream, self.cut_after = path, upstream, cut_after
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(path))
        self.server.listen()
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            engine = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            engine.connect(self.upstream)
            self.sockets += [client, engine]
            for source, sink in ((client, engine), (engine, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()
            threading.Timer(self.cut_after, self._cut, args=(client, engine)).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)

    @staticmethod
    def _cut(*ends: socket.socket) -> None:
        for end in ends:
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
            end.close()

    def close(self) -> None:
        self.server.close()
        self._cut(*self.sockets)


@pytest.mark.docker
def test_a_connection_dropped_mid_build_is_docker_unavailable_and_redacted_everywhere(
    tmp_path: Path, docker: DockerClient, busybox_image: str
) -> None:
    root = repo(tmp_path / "repo", '{ NPM_TOKEN = "${NPM_TOKEN}" }')
    (root / "app" / "Dockerfile").write_text(
        f"FROM {busybox_image}\n{LABEL_LINE}LABEL dev.stagegate.dropped={TEST_PREFIX}\nARG NPM_TOKEN\nRUN sleep 5\n"
    )
    config = load_config(root, {"NPM_TOKEN": TOKEN})
    spec = config.images["t/app"]
    artifacts = config.artifacts
    log_file = artifacts / "logs" / "build" / "t-app.log"
    log_file.parent.mkdir(parents=True)
    request = BuildRequest(spec.context, spec.dockerfile, ["t/app:sg-1"], dict(spec.build_args), {})
    proxy = DroppingProxy(tmp_path / "engine.sock", "/var/run/docker.sock", cut_after=1.5)
    try:
        with log_file.open("w") as log, pytest.raises(BuildFailure) as failed:
            LegacyBuilder(DockerClient(host=f"unix://{proxy.path}")).build(request, log)
    finally:
        proxy.close()
        for container in docker.container.list(
            all=True, filters=[("label", f"dev.stagegate.dropped={TEST_PREFIX}")]
        ):
            with contextlib.suppress(DockerException):  # the engine may be removing it already
                docker.container.remove(container, force=True)
        with contextlib.suppress(DockerException):
            docker.image.remove("t/app:sg-1", force=True)
    assert "error during connect" in failed.value.output and "buildargs=" in failed.value.output
    error = build_error(spec, failed.value, config.relpath, log_file)
    assert error.code == Code.DOCKER_UNAVAILABLE

    ledger = Ledger(artifacts)
    ledger.begin("preflight", git={"sha": None, "dirty": None}, options={})
    ledger.record_pass("preflight", 0.1, {})
    ledger.begin("build", git={"sha": None, "dirty": None}, options={})
    document = ledger.record_failure("build", error, 1.0, {"images": {"t/app": {"detail": error.message}}})
    summary = tmp_path / "step-summary.md"
    env = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)}
    console = Console(file=io.StringIO(), width=200, force_terminal=False)
    reporter = Reporter(console)
    annotations = io.StringIO()
    reporter.workflow_command = lambda line: annotations.write(line + "\n")  # type: ignore[method-assign]
    reporter.summary(ledger.read_run() or {}, document, artifacts)
    publish_reports("build", artifacts, env, reporter)

    written = {p.name: p.read_text() for p in [*artifacts.rglob("*"), summary] if p.is_file()}
    assert {"t-app.log", "error.json", "run.json", "junit.xml", "step-summary.md"} <= set(written)
    shown = {"terminal": console.file.getvalue(), "annotation": annotations.getvalue(), **written}
    assert [name for name, text in shown.items() if TOKEN in text] == []  # URL-encoded, it is the same
    assert "--build-arg NPM_TOKEN=<redacted>" in written["t-app.log"]
    assert "buildargs=<redacted>" in written["t-app.log"]
    assert "NPM_TOKEN=<redacted>" in json.loads(written["error.json"])["command"]["argv"]
    assert json.loads(written["error.json"])["code"] == "DOCKER_UNAVAILABLE"
