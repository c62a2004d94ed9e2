"""Poll the API for pending runs, compute ``sum(numbers)`` and report the result."""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from typing import Any

from stackcommon import json_bytes

SERVICE = "worker"
TIMEOUT_SECONDS = 5.0

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


def process_one(api_url: str) -> bool:
    """Claim and complete one run. True if a run was processed, False if none was pending.

    Raises ``OSError`` (``urllib.error.URLError`` included) when the API cannot be reached
    or refuses a request, and ``ValueError`` when it answers something other than JSON.
    """
    status, claimed = call_api(api_url, "/runs/claim")
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


def run(api_url: str, interval: float = 0.5, once: bool = False) -> int:
    """Process runs until stopped, sleeping ``interval`` seconds when idle or after an error.

    With ``once``, make a single attempt and return 0 (processed or nothing to do) or 1 (error).
    """
    while True:
        try:
            processed = process_one(api_url)
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
