"""Pushing this run's images to ``[tool.stagegate.registry]``, each under its content-hash tag,
and the repository digest every later stage pins them by (``registry/name@sha256:…``).

Every call goes through the Docker CLI of the injected client (``docker_cmd``), so the
credentials are the user's own Docker config (``docker login``); stagegate never reads, writes
or logs any. An image whose tag already exists remotely with the digest the local engine last
pushed it as is not pushed again: no request but one manifest lookup reaches the registry.
"""

from __future__ import annotations

import ipaddress
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from python_on_whales import DockerClient
from python_on_whales.exceptions import DockerException

from . import runner
from .builder import log_excerpt
from .config import RegistryConfig
from .errors import Code, CommandEvidence, StagegateError

log = logging.getLogger(__name__)

PUSH_TIMEOUT = 1800.0
LOOKUP_TIMEOUT = 30.0


@dataclass(frozen=True)
class PushResult:
    name: str
    remote: str  # registry/name:tag
    pinned: str  # registry/name@sha256:…
    digest: str
    action: str  # "pushed" | "present"
    duration_s: float

    def to_json(self) -> dict[str, Any]:
        return {
            "remote": self.remote,
            "pinned": self.pinned,
            "digest": self.digest,
            "action": self.action,
            "duration_s": round(self.duration_s, 3),
        }


def insecure(registry: RegistryConfig) -> bool:
    """Plain HTTP for the manifest lookups: as configured, and always for a loopback host
    (the Docker engine itself allows 127.0.0.0/8 without TLS)."""
    if registry.insecure:
        return True
    host = registry.url.split("/", 1)[0].rsplit(":", 1)[0]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass
class Pusher:
    docker: DockerClient
    registry: RegistryConfig
    log_dir: Path
    monotonic: Callable[[], float]

    @property
    def _cli(self) -> list[str]:
        return [str(part) for part in self.docker.client_config.docker_cmd]

    def push(self, name: str, local_ref: str) -> PushResult:
        """Push ``local_ref`` (``name:sg-…``) as ``registry/name:sg-…``; skip it when the
        registry already holds that tag at the digest this engine knows it by."""
        started = self.monotonic()
        tag = local_ref.rsplit(":", 1)[1]
        repository = self.registry.repository(name)
        remote = f"{repository}:{tag}"
        known = self._repo_digest(local_ref, repository)
        if known is not None and self.remote_digest(remote) == known:
            return PushResult(
                name, remote, f"{repository}@{known}", known, "present", self.monotonic() - started
            )
        try:
            self.docker.image.tag(local_ref, remote)
        except DockerException as exc:
            raise self._failed(
                name, remote, exc.stderr or str(exc), exc.docker_command, exc.return_code
            ) from None
        log_file = self.log_dir / f"{name.replace('/', '_')}.log"
        try:
            runner.run([*self._cli, "push", remote], timeout=PUSH_TIMEOUT, log_file=log_file)
        except runner.CommandFailed as exc:
            raise self._failed(
                name, remote, runner.last_line(exc.stderr) or exc.reason, exc.argv, exc.exit_code, log_file
            ) from None
        digest = self._repo_digest(remote, repository)
        if digest is None:
            raise self._failed(
                name, remote, "the engine recorded no repository digest after the push", [], None
            )
        return PushResult(
            name, remote, f"{repository}@{digest}", digest, "pushed", self.monotonic() - started
        )

    def remote_digest(self, ref: str) -> str | None:
        """The digest the registry serves ``ref`` at, or None when it has no such tag (or
        cannot be asked: the push that follows then says why)."""
        argv = [*self._cli, "manifest", "inspect", "-v"]
        if insecure(self.registry):
            argv.append("--insecure")
        try:
            result = runner.run([*argv, ref], timeout=LOOKUP_TIMEOUT)
        except runner.CommandFailed as exc:
            log.debug("manifest lookup of %s: %s", ref, runner.last_line(exc.stderr) or exc.reason)
            return None
        try:
            found = json.loads(result.stdout)
        except ValueError:
            return None
        if isinstance(found, list):  # a manifest list: its own digest is not in -v output
            return None
        digest = (found.get("Descriptor") or {}).get("digest")
        return str(digest) if digest else None

    def _repo_digest(self, ref: str, repository: str) -> str | None:
        try:
            digests = self.docker.image.inspect(ref).repo_digests
        except DockerException:
            return None
        for entry in digests or []:
            repo, _, digest = entry.partition("@")
            if repo == repository and digest.startswith("sha256:"):
                return digest
        return None

    def _failed(
        self,
        name: str,
        remote: str,
        why: str,
        argv: list[Any],
        exit_code: int | None,
        log_file: Path | None = None,
    ) -> StagegateError:
        text = (log_file.read_text(errors="replace") if log_file and log_file.exists() else why) or why
        return StagegateError(
            Code.IMAGE_PUSH_FAILED,
            f"could not push {name} to {remote}: {why.strip()}",
            "is the registry up and reachable from here, and are you logged in (`docker login "
            f"{self.registry.url.split('/', 1)[0]}`)? stagegate uses your Docker config's credentials only",
            {"image": name, "ref": remote, "registry": self.registry.url},
            command=CommandEvidence([str(a) for a in argv], exit_code),
            log_excerpt=log_excerpt(text),
            log_file=str(log_file) if log_file else None,
        )
