"""Failure classes on the real engine: a failing Dockerfile line's error.json says a re-run will
not help; a build whose connection to the engine is cut mid-build says a re-run may pass.

The engine is never stopped (other runs share it): the build talks to it through a unix-socket
proxy of the test's own, which forwards every connection to the engine's socket and is closed
while the engine runs the build's long RUN step — a real engine and a really dropped connection.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from python_on_whales import DockerClient

from tests.conftest import LABEL_LINE, Repo
from tests.integration.conftest import image_table, run

pytestmark = pytest.mark.docker


def _engine_socket() -> str:
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if not host.startswith("unix://"):
        pytest.skip(f"the engine is not on a unix socket ({host})")
    return host.removeprefix("unix://")


class EngineProxy:
    """A unix socket whose connections are forwarded, byte for byte, to the engine's socket.

    ``build_requested`` is set once a client sent a build request through it; :meth:`cut`
    closes the listening socket and every forwarded connection in both directions.
    """

    def __init__(self, path: Path, engine: str) -> None:
        self.path, self.engine = path, engine
        self.build_requested = threading.Event()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(str(path))
        self._listener.listen(16)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:  # cut
                return
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            upstream.connect(self.engine)
            with self._lock:
                self._sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, from_client: bool) -> None:
        while True:
            try:
                data = source.recv(65536)
            except OSError:
                break
            if not data:
                break
            if from_client and b"/build?" in data:
                self.build_requested.set()
            try:
                sink.sendall(data)
            except OSError:
                break
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def cut(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.close()
        self.path.unlink(missing_ok=True)
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()


@pytest.fixture
def proxy() -> Iterator[EngineProxy]:
    folder = Path(tempfile.mkdtemp(prefix="sg-proxy-", dir="/tmp"))  # unix socket paths are short
    engine_proxy = EngineProxy(folder / "docker.sock", _engine_socket())
    yield engine_proxy
    engine_proxy.cut()
    shutil.rmtree(folder, ignore_errors=True)


def test_a_failing_dockerfile_line_says_a_rerun_will_not_help(
    repo: Repo, docker, busybox_image, reporter, ns
) -> None:
    repo.write("app/Dockerfile", f"FROM {busybox_image}\n{LABEL_LINE}RUN exit 3\n")
    repo.config(image_table(ns, ("app", "app")))
    assert run(repo, "preflight", docker=docker, reporter=reporter) == 0
    assert run(repo, "build", docker=docker, reporter=reporter) == 1
    error = repo.error()
    assert (error["code"], error["subject"]["line"]) == ("BUILD_FAILED", 3)
    assert (error["class"], error["retry"]) == ("product", False)
    assert "  re-running will not help: fix app/Dockerfile:3" in reporter.console.file.getvalue()


def test_an_engine_connection_cut_mid_build_says_a_rerun_may_pass(
    repo: Repo, docker, busybox_image, reporter, ns, proxy: EngineProxy
) -> None:
    repo.write("app/Dockerfile", f"FROM {busybox_image}\n{LABEL_LINE}RUN sleep 60\n")
    repo.config(image_table(ns, ("app", "app")))
    proxied = DockerClient(host=f"unix://{proxy.path}")
    assert run(repo, "preflight", docker=proxied, reporter=reporter) == 0

    def cut_during_the_build() -> None:
        if proxy.build_requested.wait(timeout=300):
            time.sleep(1.5)  # the engine is running `sleep 60` by now, or still sending it the context
            proxy.cut()

    cutter = threading.Thread(target=cut_during_the_build, daemon=True)
    cutter.start()
    assert run(repo, "build", docker=proxied, reporter=reporter) == 1
    cutter.join()
    assert proxy.build_requested.is_set()

    error = repo.error()
    assert error["code"] == "DOCKER_UNAVAILABLE", error
    assert (error["class"], error["retry"]) == ("environment", True)
    assert error["message"] == f"{ns}/app: the Docker daemon went away during the build"
    assert (
        "a re-run may pass: the Docker daemon went away during the build" in reporter.console.file.getvalue()
    )
    assert not docker.image.exists(f"{ns}/app")  # the real engine answers, and built nothing of it
