"""The example stack (example/base, example/api, example/worker) without Docker.

The API server runs in a thread on a free loopback port; the worker and the ``--version``
entry points run as subprocesses with PYTHONPATH pointing at the example's sources.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

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


def example_env() -> dict[str, str]:
    """The environment for the example's entry points: its sources on PYTHONPATH, no proxies."""
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env["PYTHONPATH"] = os.pathsep.join(str(d) for d in SOURCE_DIRS)
    env.pop("API_URL", None)
    return env


def run_module(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args],
        check=False,
        env=example_env(),
        capture_output=True,
        text=True,
        timeout=15,
    )


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
    with socket.socket() as sock:  # a loopback port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = run_module("worker", "--once", "--api-url", f"http://127.0.0.1:{port}")
    assert proc.returncode == 1
    assert "unavailable" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(("module", "expected"), [("api", "api-server 0.1.0"), ("worker", "worker 0.1.0")])
def test_version_flag(module: str, expected: str) -> None:
    proc = run_module(module, "--version")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == expected
