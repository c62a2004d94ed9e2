"""HTTP JSON API that accepts runs (lists of numbers) and hands them out to workers."""

from __future__ import annotations

import json
import logging
import re
import threading
import uuid
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from stackcommon import VERSION, is_number, json_bytes

SERVICE = "api-server"
MAX_BODY_BYTES = 1 << 20

log = logging.getLogger(SERVICE)

RUN_PATH = re.compile(r"^/runs/(?P<id>[^/]+)$")
COMPLETE_PATH = re.compile(r"^/runs/(?P<id>[^/]+)/complete$")

Response = tuple[HTTPStatus, Any]


class ApiError(Exception):
    """An error answered to the client as ``{"error": message}`` with ``status``."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class RunStore:
    """In-memory runs, oldest first; every access holds the lock and returns copies."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs: dict[str, dict[str, Any]] = {}  # insertion order = submission order

    def create(self, numbers: list[float]) -> dict[str, Any]:
        run = {"id": uuid.uuid4().hex, "status": "pending", "numbers": list(numbers)}
        with self._lock:
            self._runs[run["id"]] = run
            return dict(run)

    def get(self, run_id: str) -> dict[str, Any] | None:
        with self._lock:
            run = self._runs.get(run_id)
            return dict(run) if run else None

    def claim(self) -> dict[str, Any] | None:
        """Mark the oldest pending run as running and return it, or None."""
        with self._lock:
            for run in self._runs.values():
                if run["status"] == "pending":
                    run["status"] = "running"
                    return dict(run)
        return None

    def complete(self, run_id: str, result: float) -> dict[str, Any]:
        with self._lock:
            run = self._runs.get(run_id)
            if run is None:
                raise ApiError(HTTPStatus.NOT_FOUND, f"unknown run {run_id}")
            if run["status"] != "running":
                raise ApiError(HTTPStatus.CONFLICT, f"run {run_id} is {run['status']}, not running")
            run.update(status="done", result=result)
            return dict(run)


class ApiServer(ThreadingHTTPServer):
    """Threading HTTP server that owns the run store."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], store: RunStore | None = None) -> None:
        super().__init__(address, ApiHandler)
        self.store = store if store is not None else RunStore()


class ApiHandler(BaseHTTPRequestHandler):
    server: ApiServer
    server_version = f"{SERVICE}/{VERSION}"

    def do_GET(self) -> None:
        self._dispatch(self._get)

    def do_POST(self) -> None:
        self._dispatch(self._post)

    @property
    def route_path(self) -> str:
        """The request path without query string or fragment."""
        return urlsplit(self.path).path

    def _get(self) -> Response:
        path = self.route_path
        if path == "/healthz":
            return HTTPStatus.OK, {"status": "ok"}
        if path == "/version":
            return HTTPStatus.OK, {"service": SERVICE, "version": VERSION}
        if match := RUN_PATH.match(path):
            run = self.server.store.get(match["id"])
            if run is None:
                raise ApiError(HTTPStatus.NOT_FOUND, f"unknown run {match['id']}")
            return HTTPStatus.OK, run
        raise ApiError(HTTPStatus.NOT_FOUND, f"no route for GET {path}")

    def _post(self) -> Response:
        path, store = self.route_path, self.server.store
        if path == "/runs":
            numbers = self._read_json().get("numbers")
            if not isinstance(numbers, list) or not all(is_number(n) for n in numbers):
                raise ApiError(HTTPStatus.BAD_REQUEST, '"numbers" must be a list of numbers')
            return HTTPStatus.CREATED, store.create(numbers)
        if path == "/runs/claim":
            run = store.claim()
            return (HTTPStatus.OK, run) if run else (HTTPStatus.NO_CONTENT, None)
        if match := COMPLETE_PATH.match(path):
            result = self._read_json().get("result")
            if not is_number(result):
                raise ApiError(HTTPStatus.BAD_REQUEST, '"result" must be a number')
            return HTTPStatus.OK, store.complete(match["id"], result)
        raise ApiError(HTTPStatus.NOT_FOUND, f"no route for POST {path}")

    def _read_json(self) -> dict[str, Any]:
        """The request body as a JSON object, or an ApiError(400)."""
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise ApiError(HTTPStatus.BAD_REQUEST, "invalid Content-Length") from None
        if not 0 < length <= MAX_BODY_BYTES:
            raise ApiError(HTTPStatus.BAD_REQUEST, "expected a JSON body of at most 1 MiB")
        try:
            body = json.loads(self.rfile.read(length))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ApiError(HTTPStatus.BAD_REQUEST, f"invalid JSON: {exc}") from None
        if not isinstance(body, dict):
            raise ApiError(HTTPStatus.BAD_REQUEST, "expected a JSON object")
        return body

    def _dispatch(self, route: Callable[[], Response]) -> None:
        try:
            status, payload = route()
        except ApiError as exc:
            status, payload = exc.status, {"error": exc.message}
        except Exception:
            log.exception("unhandled error in %s %s", self.command, self.path)
            status, payload = (
                HTTPStatus.INTERNAL_SERVER_ERROR,
                {"error": "internal error"},
            )
        self._send(status, payload)

    def _send(self, status: HTTPStatus, payload: Any) -> None:
        body = b"" if payload is None else json_bytes(payload)
        self.send_response(status)
        if status != HTTPStatus.NO_CONTENT:  # a 204 carries neither body nor length
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Log requests in one line; idle claims (204, polled by workers) only at debug level."""
        level = logging.DEBUG if code == HTTPStatus.NO_CONTENT else logging.INFO
        log.log(level, '%s "%s" %s', self.address_string(), self.requestline, code)

    def log_message(self, format: str, *args: Any) -> None:
        log.info("%s %s", self.address_string(), format % args)
