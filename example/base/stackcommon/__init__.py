"""Utilities shared by the example stack's services (api-server and worker)."""

from __future__ import annotations

import json
import logging
import math
from typing import Any

VERSION = "0.1.0"

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def json_bytes(payload: Any) -> bytes:
    """Encode ``payload`` as compact UTF-8 JSON."""
    return json.dumps(payload, separators=(",", ":")).encode("utf-8")


def is_number(value: Any) -> bool:
    """True for finite ints and floats; booleans (a ``bool`` is an ``int``) and NaN are not numbers."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return isinstance(value, int) or math.isfinite(value)


def configure_logging(level: int = logging.INFO) -> None:
    """Log one line per record to stderr."""
    logging.basicConfig(level=level, format=LOG_FORMAT)
