"""Secret build args: which ones are secret, what the inputs file keeps of them, and the
Docker connection that drops mid-build (its error carries the request URL with the build args)
— redacted in the log, error.json, run.json, junit.xml, the job summary, the annotation and the
terminal, and reported as DOCKER_UNAVAILABLE."""

from __future__ import annotations

import contextlib
import io
import json
import socket
import textwrap
import threading
from pathlib import Path

import pytest
from python_on_whales import DockerClient
from python_on_whales.exceptions import DockerException
from rich.console import Console
from stagegate import hashing, redact
from stagegate.builder import BuildFailure, BuildRequest, LegacyBuilder
from stagegate.config import load_config
from stagegate.errors import Code, StagegateError
from stagegate.imageinputs import image_inputs, save_inputs
from stagegate.ledger import Ledger
from stagegate.pipeline import publish_reports
from stagegate.stages.build_image import build_error
from stagegate.ui import Reporter

from tests.conftest import LABEL_LINE, TEST_PREFIX

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "build-output"
# The token of the recorded fixture (a fake one, made up for the recording).
TOKEN = "npm_FAKE0123456789abcdef"


@pytest.fixture(autouse=True)
def _fresh_registry():
    redact.SECRETS.clear()
    yield
    redact.SECRETS.clear()


def recorded(name: str) -> str:
    lines = (FIXTURES / name).read_text().splitlines(keepends=True)
    return "".join(line for line in lines if not line.startswith("#fixture:"))


def repo(root: Path, build_args: str, extra: str = "") -> Path:
    (root / "app").mkdir(parents=True)
    (root / "app" / "Dockerfile").write_text("FROM busybox\nARG NPM_TOKEN\nRUN true\n")
    (root / "pyproject.toml").write_text(
        textwrap.dedent(
            f"""\
            [tool.stagegate]
            [[tool.stagegate.images]]
            name = "t/app"
            context = "app"
            build_args = {build_args}
            {extra}
            """
        )
    )
    return root


def test_secret_build_args_are_those_configured_and_those_named_like_secrets(tmp_path: Path) -> None:
    root = repo(
        tmp_path,
        '{ NPM_TOKEN = "${T}", NPM_AUTH = "auth-value-1", KEYBOARD_LAYOUT = "us-intl", BASE = "x" }',
        'secret_build_args = ["NPM_AUTH"]',
    )
    spec = load_config(root, {"T": TOKEN}).images["t/app"]
    assert spec.secret_build_args == {"NPM_TOKEN", "NPM_AUTH"}
    # registered as soon as the config is resolved
    assert redact.redact(f"{TOKEN} auth-value-1 us-intl") == "<redacted> <redacted> us-intl"


def test_secret_build_args_must_name_a_build_arg(tmp_path: Path) -> None:
    root = repo(tmp_path, '{ NPM_AUTH = "x" }', 'secret_build_args = ["NPM_AUHT"]')
    with pytest.raises(StagegateError) as raised:
        load_config(root, {})
    assert raised.value.code == Code.CONFIG_INVALID
    assert raised.value.subject["key"] == "tool.stagegate.images[0].secret_build_args[0]"
    assert "NPM_AUTH" in raised.value.hint


def test_the_inputs_file_keeps_a_fingerprint_and_a_rotated_token_changes_the_hash(tmp_path: Path) -> None:
    root = repo(tmp_path, '{ NPM_TOKEN = "${T}", BASE = "plain" }')

    def inputs(token: str) -> hashing.Inputs:
        spec = load_config(root, {"T": token}).images["t/app"]
        return image_inputs(spec, {}, lambda ref: "sha256:base", hasher=hashing.ContextHasher(None))[1]

    first = inputs(TOKEN)
    assert first.build_args == {"NPM_TOKEN": redact.fingerprint(TOKEN), "BASE": "plain"}
    save_inputs(tmp_path / "inputs", "t/app", first)
    assert TOKEN not in (tmp_path / "inputs" / "t-app.json").read_text()
    rotated = inputs(TOKEN + "-rotated")
    assert rotated.digest() != first.digest()  # as Docker's own cache keys include build args
    assert rotated.changes_since(first) == ["build arg NPM_TOKEN changed"]


def test_the_recorded_dropped_connection_is_the_daemon_gone_and_its_url_is_redacted() -> None:
    output = recorded("legacy-connection-dropped.txt")
    assert TOKEN in output  # URL-encoded in the request URL the CLI repeats
    failure = BuildFailure(["docker", "build", "--build-arg", f"NPM_TOKEN={TOKEN}", "app"], 1, output)
    assert failure.daemon_down
    redact.register(TOKEN)
    assert TOKEN not in redact.redact(output) and "buildargs=<redacted>" in redact.redact(output)


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
