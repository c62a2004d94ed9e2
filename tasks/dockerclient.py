"""The one place a ``python_on_whales.DockerClient`` is made.

Which ``docker`` executable runs is configurable: ``STAGEGATE_DOCKER`` names it (a path or a
name looked up on PATH), else ``docker`` on PATH. A machine with several clients (a new one
first on PATH, and an older one that runs BuildKit itself beside a distribution's engine)
picks one this way; the builder is then detected from that client (:mod:`stagegate.builder`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from python_on_whales import DockerClient

DOCKER_ENV = "STAGEGATE_DOCKER"


def docker_executable(env: Mapping[str, str] = os.environ) -> str:
    """The ``docker`` executable stagegate runs."""
    return env.get(DOCKER_ENV) or "docker"


def docker_client(env: Mapping[str, str] = os.environ, **options: object) -> DockerClient:
    """A client of the configured executable; ``options`` go to ``DockerClient`` (``host=``…)."""
    return DockerClient(client_call=[docker_executable(env)], **options)  # type: ignore[arg-type]
