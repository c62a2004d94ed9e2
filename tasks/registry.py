"""Pushing this run's images to ``[tool.stagegate.registry]``, each under its content-hash tag,
and the repository digest every later stage pins them by (``registry/name@sha256:…``); and the
registry as the build's content-addressed cache (:class:`RegistryCache`): an image whose
content-hash tag the registry already serves is pulled (or, on the existing target, only
recorded) instead of built.

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
from .config import RegistryConfig
from .errors import Code, CommandEvidence, StagegateError
from .runner import log_excerpt

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


@dataclass(frozen=True)
class RemoteImage:
    """What one manifest lookup tells of an image in the registry."""

    ref: str  # registry/name:tag
    digest: str  # the manifest's digest: what the image is pinned by
    image_id: str  # its config's digest: the image ID a pull of it gives
    platform: str | None  # os/arch[/variant]

    @property
    def pinned(self) -> str:
        return f"{self.ref.rsplit(':', 1)[0]}@{self.digest}"


class LookupFailed(Exception):
    """The registry could not be asked (down, refused, unauthorized, not a single image)."""


# What ``docker manifest inspect`` says of a tag the registry does not have (distribution's
# "manifest unknown", the CLI's own "no such manifest"): an answer, not a failure.
_ABSENT = ("no such manifest", "manifest unknown", "not found")


def look_up(cli: list[str], registry: RegistryConfig, ref: str) -> RemoteImage | None:
    """One ``docker manifest inspect -v`` of ``ref``: the image, or None when the registry has
    no such tag; :class:`LookupFailed` when the registry could not be asked or its answer is
    not one image's manifest (a manifest list is never taken for a content-hash tag)."""
    argv = [*cli, "manifest", "inspect", "-v"]
    if insecure(registry):
        argv.append("--insecure")
    try:
        result = runner.run([*argv, ref], timeout=LOOKUP_TIMEOUT)
    except runner.CommandFailed as exc:
        why = runner.last_line(exc.stderr) or exc.reason
        if any(marker in why.lower() for marker in _ABSENT):
            return None
        raise LookupFailed(why) from None
    try:
        found = json.loads(result.stdout)
    except ValueError:
        raise LookupFailed("the manifest lookup did not answer JSON") from None
    if not isinstance(found, dict):  # a manifest list: its own digest is not in -v output
        raise LookupFailed("the registry serves a manifest list, not one image")
    descriptor = found.get("Descriptor") or {}
    config = (found.get("SchemaV2Manifest") or found.get("OCIManifest") or {}).get("config") or {}
    platform = descriptor.get("platform") or {}
    if not descriptor.get("digest") or not config.get("digest"):
        raise LookupFailed("the manifest names no digest")
    shown = "/".join(
        p for p in (platform.get("os"), platform.get("architecture"), platform.get("variant")) if p
    )
    return RemoteImage(ref, str(descriptor["digest"]), str(config["digest"]), shown or None)


@dataclass
class RegistryCache:
    """The registry as the build's cache: :meth:`find` asks for an image's content-hash tag
    (one manifest lookup), :meth:`pull` fetches it and tags it as if it had been built here.

    Goes through the user's Docker CLI (``cli``), so its credentials are theirs."""

    cli: list[str]
    registry: RegistryConfig
    log_dir: Path

    def remote(self, name: str, tag: str) -> str:
        return f"{self.registry.repository(name)}:{tag}"

    def find(self, name: str, tag: str) -> RemoteImage | None:
        """The image ``name:tag`` in the registry, or None; :class:`LookupFailed` as
        :func:`look_up`."""
        return look_up(self.cli, self.registry, self.remote(name, tag))

    def pull(self, found: RemoteImage) -> None:
        """``docker pull`` of ``found`` by its tag (which keeps it locally too, with the
        repository digest a later push finds); :class:`runner.CommandFailed` when it fails,
        its output in the pull log."""
        name = found.ref.removeprefix(self.registry.url + "/").rsplit(":", 1)[0]
        log_file = self.log_dir / f"{name.replace('/', '-')}.log"
        runner.run([*self.cli, "pull", found.ref], timeout=PUSH_TIMEOUT, log_file=log_file)

    def tag(self, ref: str, tags: list[str]) -> None:
        """Each of ``tags`` pointed at the local image ``ref``."""
        for tag in tags:
            runner.run([*self.cli, "tag", ref, tag], timeout=LOOKUP_TIMEOUT)

    def pull_for_cache(self, name: str) -> str | None:
        """The registry's ``latest`` of ``name`` pulled, for a build's ``--cache-from``; None
        (and nothing but a log line) when it is not there or cannot be pulled."""
        ref = self.remote(name, "latest")
        try:
            runner.run([*self.cli, "pull", "--quiet", ref], timeout=PUSH_TIMEOUT)
        except runner.CommandFailed as exc:
            log.info(
                "no layer cache for %s from %s: %s", name, ref, runner.last_line(exc.stderr) or exc.reason
            )
            return None
        return ref

    def release(self, ref: str) -> None:
        """The local tag of an image :meth:`pull_for_cache` pulled, removed (and the image with
        it when nothing else names it); a failure is only logged."""
        try:
            runner.run([*self.cli, "image", "rm", ref], timeout=LOOKUP_TIMEOUT)
        except runner.CommandFailed as exc:
            log.info(
                "could not remove the layer cache image %s: %s",
                ref,
                runner.last_line(exc.stderr) or exc.reason,
            )


@dataclass
class Pusher:
    docker: DockerClient
    registry: RegistryConfig
    log_dir: Path
    monotonic: Callable[[], float]
    push_latest: bool = False  # also move registry/name:latest to each image pushed

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
        if self.push_latest:
            self._push_latest(name, remote, repository, log_file)
        return PushResult(
            name, remote, f"{repository}@{digest}", digest, "pushed", self.monotonic() - started
        )

    def remote_digest(self, ref: str) -> str | None:
        """The digest the registry serves ``ref`` at, or None when it has no such tag (or
        cannot be asked: the push that follows then says why)."""
        try:
            found = look_up(self._cli, self.registry, ref)
        except LookupFailed as exc:
            log.debug("manifest lookup of %s: %s", ref, exc)
            return None
        return None if found is None else found.digest

    def _push_latest(self, name: str, remote: str, repository: str, log_file: Path) -> None:
        """``repository:latest`` moved to the image just pushed: the layer cache the next
        build of ``name`` starts from (``--cache-from``). Its layers are already there, so this
        is a manifest upload; a failure is logged, never the push's."""
        latest = f"{repository}:latest"
        try:
            self.docker.image.tag(remote, latest)
            runner.run(
                [*self._cli, "push", latest],
                timeout=PUSH_TIMEOUT,
                log_file=log_file.with_suffix(".latest.log"),
            )
        except (DockerException, runner.CommandFailed) as exc:
            log.warning("%s: could not move %s: %s", name, latest, exc)

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
