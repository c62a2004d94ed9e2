"""Entry point: ``python3 -m api [--host HOST] [--port PORT] [--version]``."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Sequence
from types import FrameType

from stackcommon import VERSION, configure_logging

from api.server import SERVICE, ApiServer

log = logging.getLogger(SERVICE)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="api", description="Run the example stack's HTTP JSON API.")
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on (default: 0.0.0.0)")
    parser.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("PORT", "8080")),
        help="port to listen on (default: $PORT or 8080)",
    )
    parser.add_argument("--version", action="version", version=f"{SERVICE} {VERSION}")
    return parser.parse_args(argv)


def _stop(signum: int, frame: FrameType | None) -> None:
    """Leave serve_forever() on SIGTERM (the default action does not apply to PID 1 in a container)."""
    raise SystemExit(0)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging()
    signal.signal(signal.SIGTERM, _stop)
    with ApiServer((args.host, args.port)) as server:
        log.info("%s %s listening on %s:%d", SERVICE, VERSION, args.host, server.server_port)
        with contextlib.suppress(KeyboardInterrupt):
            server.serve_forever()
    log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
