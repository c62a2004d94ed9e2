"""The one place a ``python_on_whales.DockerClient`` is made — when it is first used.

Which ``docker`` executable runs is configurable: ``STAGEGATE_DOCKER`` names it (a path or a
name looked up on PATH), else ``docker`` on PATH. A machine with several clients (a new one
first on PATH, and an older one that runs BuildKit itself beside a distribution's engine)
picks one this way; the builder is then detected from that client (:mod:`stagegate.builder`).

A stage is handed a :class:`DeferredDockerClient`: python-on-whales is imported, and the
client made, on the first call that needs it. The questions every run asks first go to the
CLI directly (:mod:`stagegate.engine`, through :func:`docker_argv`), so a run with nothing to
build never imports python-on-whales at all.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from python_on_whales import DockerClient

DOCKER_ENV = "STAGEGATE_DOCKER"


def docker_executable(env: Mapping[str, str] = os.environ) -> str:
    """The ``docker`` executable stagegate runs."""
    return env.get(DOCKER_ENV) or "docker"


def docker_client(env: Mapping[str, str] = os.environ, **options: object) -> DockerClient:
    """A client of the configured executable; ``options`` go to ``DockerClient`` (``host=``…)."""
    from python_on_whales import DockerClient

    return DockerClient(client_call=[docker_executable(env)], **options)  # type: ignore[arg-type]


class DeferredDockerClient:
    """A ``DockerClient`` of the configured executable, made on first use: attributes are the
    client's (``docker.image.inspect(…)``), and :func:`docker_argv` needs none of them."""

    def __init__(self, env: Mapping[str, str] = os.environ) -> None:
        self.executable = docker_executable(env)
        self._env = dict(env)
        self._client: DockerClient | None = None

    @property
    def client(self) -> DockerClient:
        if self._client is None:
            self._client = docker_client(self._env)
        return self._client

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


def docker_argv(docker: DockerClient | DeferredDockerClient) -> list[str]:
    """The argv prefix that runs ``docker`` the way ``docker`` (the client) does."""
    if isinstance(docker, DeferredDockerClient):
        return [docker.executable]
    return [str(part) for part in docker.client_config.docker_cmd]
