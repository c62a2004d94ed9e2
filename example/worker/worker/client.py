"""Poll the API for pending runs, compute ``sum(numbers)`` and report the result."""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from stackcommon import json_bytes

SERVICE = "worker"
TIMEOUT_SECONDS = 5.0
DEFAULT_READY_FILE = "/tmp/worker-ready"

log = logging.getLogger(SERVICE)


def call_api(api_url: str, path: str, payload: Any = None) -> tuple[int, Any]:
    """POST ``payload`` as JSON to ``api_url + path``; return the status and the decoded body."""
    request = urllib.request.Request(
        api_url.rstrip("/") + path,
        data=json_bytes(payload) if payload is not None else b"",
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
        body = response.read()
        return response.status, json.loads(body) if body else None


def process_one(api_url: str, on_contact: Callable[[], None] | None = None) -> bool:
    """Claim and complete one run. True if a run was processed, False if none was pending.

    ``on_contact`` is called as soon as the API has answered the claim with 200 or 204,
    before the run is completed.

    Raises ``OSError`` (``urllib.error.URLError`` included) when the API cannot be reached
    or refuses a request, and ``ValueError`` when it answers something other than JSON.
    """
    status, claimed = call_api(api_url, "/runs/claim")
    if on_contact is not None and status in (200, 204):
        on_contact()
    if status == 204 or not claimed:
        return False
    result = sum(claimed["numbers"])
    call_api(api_url, f"/runs/{claimed['id']}/complete", {"result": result})
    log.info(
        "completed run %s: sum of %d numbers = %s",
        claimed["id"],
        len(claimed["numbers"]),
        result,
    )
    return True


class ReadyFile:
    """The file whose existence tells a readiness probe that the worker has reached the API.

    A file left over from an earlier process is removed on creation; :meth:`mark` writes
    the file once, on the first successful contact. ``path=None`` disables it.
    """

    def __init__(self, path: str | Path | None) -> None:
        self.path = Path(path) if path else None
        self.marked = False
        if self.path is not None:
            try:
                self.path.unlink(missing_ok=True)
            except OSError as exc:
                log.warning("cannot remove the stale ready file %s: %s", self.path, exc)

    def mark(self) -> None:
        if self.marked or self.path is None:
            return
        self.marked = True  # one attempt: a failure is logged once, not on every claim
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            partial = self.path.with_name(self.path.name + ".partial")
            partial.write_text("ready\n")
            partial.replace(self.path)
        except OSError as exc:
            log.warning("API reachable, but cannot write the ready file %s: %s", self.path, exc)
            return
        log.info("API reachable; wrote the ready file %s", self.path)


def run(
    api_url: str,
    interval: float = 0.5,
    once: bool = False,
    ready_file: str | Path | None = None,
) -> int:
    """Process runs until stopped, sleeping ``interval`` seconds when idle or after an error.

    With ``once``, make a single attempt and return 0 (processed or nothing to do) or 1 (error).
    ``ready_file`` is written after the first claim the API answers (see :class:`ReadyFile`).
    """
    ready = ReadyFile(ready_file)
    while True:
        try:
            processed = process_one(api_url, on_contact=ready.mark)
        except urllib.error.HTTPError as exc:
            log.warning("API answered %s %s", exc.code, exc.reason)
            processed = None
        except (OSError, ValueError) as exc:
            log.warning("API at %s unavailable: %s", api_url, exc)
            processed = None
        if once:
            return 0 if processed is not None else 1
        if not processed:
            time.sleep(interval)
