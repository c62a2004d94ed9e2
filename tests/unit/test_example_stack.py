"""The example stack (example/base, example/api, example/worker) without Docker.

The API server runs in a thread on a free loopback port; the worker and the ``--version``
entry points run as subprocesses with PYTHONPATH pointing at the example's sources.
"""

from __future__ import annotations

import http.client
import json
import os
import queue
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import signallable

EXAMPLE = Path(__file__).resolve().parents[2] / "example"
SOURCE_DIRS = [EXAMPLE / "base", EXAMPLE / "api", EXAMPLE / "worker"]
EXAMPLE_MODULES = ("stackcommon", "api", "worker")


def _is_example_module(name: str) -> bool:
    return any(name == top or name.startswith(top + ".") for top in EXAMPLE_MODULES)


@pytest.fixture(scope="module")
def api_module() -> Iterator[Any]:
    """Import the example's ``api`` package; undo the sys.path and sys.modules changes afterwards."""
    saved_path = list(sys.path)
    shadowed = {name: mod for name, mod in sys.modules.items() if _is_example_module(name)}
    for name in shadowed:
        del sys.modules[name]
    sys.path[:0] = [str(d) for d in SOURCE_DIRS]
    try:
        import api

        yield api
    finally:
        sys.path[:] = saved_path
        for name in [n for n in sys.modules if _is_example_module(n)]:
            del sys.modules[name]
        sys.modules.update(shadowed)


@pytest.fixture
def api_port(api_module: Any) -> Iterator[int]:
    """A fresh API server (empty store) on 127.0.0.1, stopped after the test."""
    server = api_module.ApiServer(("127.0.0.1", 0))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server.server_port
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def request(port: int, method: str, path: str, body: Any = None, raw: bytes | None = None) -> tuple[int, Any]:
    """Send one request; return the status and the decoded JSON body (None when empty)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        headers = {"Content-Type": "application/json"} if data is not None else {}
        conn.request(method, path, body=data, headers=headers)
        response = conn.getresponse()
        payload = response.read()
        return response.status, json.loads(payload) if payload else None
    finally:
        conn.close()


def example_env(**extra: str) -> dict[str, str]:
    """The environment for the example's entry points: its sources on PYTHONPATH, no proxies.

    ``READY_FILE`` is empty (the worker writes no ready file) unless a test passes one.
    """
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env["PYTHONPATH"] = os.pathsep.join(str(d) for d in SOURCE_DIRS)
    env.pop("API_URL", None)
    env["READY_FILE"] = ""
    env.update(extra)
    return env


def run_module(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args],
        check=False,
        env=env if env is not None else example_env(),
        capture_output=True,
        text=True,
        timeout=15,
    )


def free_port() -> int:
    """A loopback port that nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_healthz_and_version(api_port: int) -> None:
    assert request(api_port, "GET", "/healthz") == (200, {"status": "ok"})
    assert request(api_port, "GET", "/version") == (
        200,
        {"service": "api-server", "version": "0.1.0"},
    )


def test_submit_and_get_run(api_port: int) -> None:
    status, run = request(api_port, "POST", "/runs", {"numbers": [1, 2, 3.5]})
    assert status == 201
    assert run["status"] == "pending"
    assert run["numbers"] == [1, 2, 3.5]
    assert isinstance(run["id"], str) and run["id"]
    assert request(api_port, "GET", f"/runs/{run['id']}") == (200, run)


@pytest.mark.parametrize(
    "raw",
    [
        b"{not json",
        b"[1, 2, 3]",
        b"{}",
        b'{"numbers": "1,2,3"}',
        b'{"numbers": [1, "2", 3]}',
        b'{"numbers": [true, 2]}',
        b'{"numbers": [NaN]}',
    ],
)
def test_submit_rejects_bad_input(api_port: int, raw: bytes) -> None:
    status, body = request(api_port, "POST", "/runs", raw=raw)
    assert status == 400
    assert isinstance(body["error"], str) and body["error"]


def test_unknown_run_and_route_are_404(api_port: int) -> None:
    status, body = request(api_port, "GET", "/runs/0123456789abcdef0123456789abcdef")
    assert status == 404 and "error" in body
    status, body = request(
        api_port,
        "POST",
        "/runs/0123456789abcdef0123456789abcdef/complete",
        {"result": 1},
    )
    assert status == 404 and "error" in body
    assert request(api_port, "GET", "/nope")[0] == 404


def test_claim_and_complete_lifecycle(api_port: int) -> None:
    assert request(api_port, "POST", "/runs/claim") == (204, None)
    _, first = request(api_port, "POST", "/runs", {"numbers": [1]})
    _, second = request(api_port, "POST", "/runs", {"numbers": [2]})

    # Not yet claimed: completing it is a conflict.
    assert request(api_port, "POST", f"/runs/{first['id']}/complete", {"result": 1})[0] == 409

    status, claimed = request(api_port, "POST", "/runs/claim")
    assert status == 200
    assert claimed == {**first, "status": "running"}  # the oldest pending run

    status, done = request(api_port, "POST", f"/runs/{first['id']}/complete", {"result": 1})
    assert (status, done) == (200, {**first, "status": "done", "result": 1})
    assert request(api_port, "POST", f"/runs/{first['id']}/complete", {"result": 1})[0] == 409
    assert request(api_port, "GET", f"/runs/{first['id']}") == (200, done)

    assert request(api_port, "POST", "/runs/claim") == (
        200,
        {**second, "status": "running"},
    )
    assert request(api_port, "POST", "/runs/claim") == (204, None)


def test_worker_once_completes_pending_run(api_port: int) -> None:
    _, submitted = request(api_port, "POST", "/runs", {"numbers": [1, 2, 3, 4.5, -0.5]})

    proc = run_module("worker", "--once", "--api-url", f"http://127.0.0.1:{api_port}")
    assert proc.returncode == 0, proc.stderr

    status, run = request(api_port, "GET", f"/runs/{submitted['id']}")
    assert status == 200
    assert run["status"] == "done"
    assert run["result"] == 10


def test_worker_once_without_pending_runs(api_port: int) -> None:
    proc = run_module("worker", "--once", "--api-url", f"http://127.0.0.1:{api_port}/")
    assert proc.returncode == 0, proc.stderr


def test_worker_once_tolerates_unreachable_api() -> None:
    port = free_port()
    proc = run_module("worker", "--once", "--api-url", f"http://127.0.0.1:{port}")
    assert proc.returncode == 1
    assert "unavailable" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(("module", "expected"), [("api", "api-server 0.1.0"), ("worker", "worker 0.1.0")])
def test_version_flag(module: str, expected: str) -> None:
    proc = run_module(module, "--version")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == expected


def _wait_for(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.02)


def test_worker_writes_ready_file_after_first_successful_claim(api_module: Any, tmp_path: Path) -> None:
    """Not ready while the API is unreachable; ready once the API answers a claim."""
    ready = tmp_path / "state" / "worker-ready"  # the parent directory does not exist yet
    port = free_port()
    worker = signallable(
        [
            sys.executable,
            *("-m", "worker", "--api-url", f"http://127.0.0.1:{port}"),
            *("--interval", "0.05", "--ready-file", str(ready)),
        ],
        env=example_env(),
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in worker.stderr], daemon=True)
    reader.start()
    server = None
    try:
        # Several failed attempts (connection refused), and still no ready file.
        failures = 0
        while failures < 3:
            line = lines.get(timeout=10)
            assert "Traceback" not in line
            failures += "unavailable" in line
        assert worker.poll() is None, "the worker must keep retrying"
        assert not ready.exists()

        server = api_module.ApiServer(("127.0.0.1", port))
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        _wait_for(ready.exists, 10, f"the worker to write {ready}")
        assert worker.poll() is None
    finally:
        worker.terminate()
        worker.wait(timeout=10)
        if server is not None:
            server.shutdown()
            server.server_close()
    reader.join(timeout=5)
    assert worker.returncode == 0  # SIGTERM is a clean stop
    assert ready.exists()
    assert not ready.with_name(ready.name + ".partial").exists()


@pytest.mark.parametrize(
    ("pending", "path", "returncode", "ready_after"),
    [
        pytest.param(True, "", 0, True, id="claim-200"),
        pytest.param(False, "", 0, True, id="claim-204"),
        pytest.param(False, "/nope", 1, False, id="claim-404"),
    ],
)
def test_worker_once_ready_file(
    api_port: int, tmp_path: Path, pending: bool, path: str, returncode: int, ready_after: bool
) -> None:
    """Only a claim answered 200 or 204 makes the worker ready; a stale file is removed first."""
    if pending:
        request(api_port, "POST", "/runs", {"numbers": [1, 2]})
    ready = tmp_path / "worker-ready"
    ready.write_text("left over from an earlier run\n")
    proc = run_module(
        *("worker", "--once", "--api-url", f"http://127.0.0.1:{api_port}{path}"),
        *("--ready-file", str(ready)),
    )
    assert proc.returncode == returncode, proc.stderr
    assert ready.exists() is ready_after
    if ready_after:
        assert ready.read_text() == "ready\n"


def test_worker_once_unreachable_api_is_not_ready(tmp_path: Path) -> None:
    ready = tmp_path / "worker-ready"
    ready.write_text("left over from an earlier run\n")
    proc = run_module(
        "worker", "--once", "--api-url", f"http://127.0.0.1:{free_port()}", "--ready-file", str(ready)
    )
    assert proc.returncode == 1
    assert not ready.exists()


def test_worker_ready_file_defaults_to_env(api_port: int, tmp_path: Path) -> None:
    ready = tmp_path / "from-env"
    proc = run_module(
        "worker",
        "--once",
        "--api-url",
        f"http://127.0.0.1:{api_port}",
        env=example_env(READY_FILE=str(ready)),
    )
    assert proc.returncode == 0, proc.stderr
    assert ready.read_text() == "ready\n"
