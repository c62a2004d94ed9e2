"""Entry point of the worker.

``python3 -m worker [--api-url URL] [--interval SECONDS] [--ready-file PATH] [--once] [--version]``
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence
from types import FrameType

from stackcommon import VERSION, configure_logging

from worker.client import DEFAULT_READY_FILE, SERVICE, run


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="worker", description="Process runs queued in the API.")
    parser.add_argument(
        "--api-url",
        default=os.environ.get("API_URL", "http://api-server:8080"),
        help="base URL of the API (default: $API_URL or http://api-server:8080)",
    )
    parser.add_argument(
        "--interval",
        type=float,
        default=0.5,
        help="seconds to wait when idle (default: 0.5)",
    )
    parser.add_argument(
        "--ready-file",
        default=os.environ.get("READY_FILE", DEFAULT_READY_FILE),
        help="file written after the first successful contact with the API, for a readiness"
        f" probe; an empty value disables it (default: $READY_FILE or {DEFAULT_READY_FILE})",
    )
    parser.add_argument("--once", action="store_true", help="process at most one run, then exit")
    parser.add_argument("--version", action="version", version=f"{SERVICE} {VERSION}")
    return parser.parse_args(argv)


def _stop(signum: int, frame: FrameType | None) -> None:
    """Exit on SIGTERM (the default action does not apply to PID 1 in a container)."""
    raise SystemExit(0)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging()
    signal.signal(signal.SIGTERM, _stop)
    try:
        return run(args.api_url, interval=args.interval, once=args.once, ready_file=args.ready_file or None)
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
