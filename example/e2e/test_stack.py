"""End-to-end tests of the example stack, run by `nox -s e2e` against the deployment.

stagegate passes the API's address as STAGEGATE_URL_API_SERVER (a port-forward on the
kind target). The worker is not reachable from here: it proves itself by completing runs.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request

import pytest

API = os.environ.get("STAGEGATE_URL_API_SERVER", "")
pytestmark = pytest.mark.skipif(
    not API, reason="STAGEGATE_URL_API_SERVER is not set: run these through `nox -s e2e`"
)


def call(method: str, path: str, body: dict | None = None) -> tuple[int, dict | None]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        f"{API}{path}", data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def test_health() -> None:
    assert call("GET", "/healthz") == (200, {"status": "ok"})


def test_version() -> None:
    status, body = call("GET", "/version")
    assert status == 200
    assert body["service"] == "api-server" and body["version"]


def test_a_submitted_run_is_completed_by_the_worker() -> None:
    status, run = call("POST", "/runs", {"numbers": [1, 2, 3, 4]})
    assert status == 201 and run["status"] == "pending"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status, current = call("GET", f"/runs/{run['id']}")
        assert status == 200
        if current["status"] == "done":
            assert current["result"] == 10
            return
        time.sleep(0.5)
    pytest.fail(
        f"the worker did not complete run {run['id']} within 60 s (last status {current['status']!r})"
    )


def test_bad_input_is_rejected() -> None:
    status, body = call("POST", "/runs", {"numbers": "not a list"})
    assert status == 400 and "error" in body
