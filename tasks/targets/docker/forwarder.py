"""Service port mapping on the docker target: one small forwarder container per Service whose
``port`` differs from its ``targetPort``, doing what kube-proxy does on a node.

A network alias cannot map ports, so such a Service's pods carry its backend alias
(:func:`.plans.backend_alias`) and the forwarder carries the Service's name: ``http://api``
on port 80 reaches a container's 8080. The forwarder resolves the backend alias through the
engine's DNS for every connection, so it finds every replica and every restarted container.

The forwarder is a static Go program shipped with stagegate (``tcp-forwarder/``: its source,
the script that rebuilds it, and the binaries for linux/amd64 and linux/arm64). Its image is
made on the engine from the binary of the engine's architecture, with ``docker import`` of a
one-file tar (``FROM scratch`` in effect): nothing is pulled, no registry and no builder are
needed. The image is tagged with the binary's hash and carries the owner labels, so teardown
removes it with everything else of the run.
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path

from python_on_whales import Container, DockerClient
from python_on_whales.exceptions import DockerException

from ...errors import Code, StagegateError
from .labels import LABEL_FORWARDER, LABEL_NAMESPACE, LABEL_OWNER, LABEL_PROJECT, conflict
from .plans import ForwarderPlan

LOG = logging.getLogger(__name__)

SOURCE_DIR = Path(__file__).parent / "tcp-forwarder"
# `docker info`'s Architecture (the engine's uname -m, or Go's name on some engines) -> GOARCH
ARCHITECTURES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}
IMAGE_REPOSITORY = "stagegate-internal/tcp-forwarder"
ENTRYPOINT = "/tcp-forwarder"


def binary(architecture: str) -> Path:
    """The forwarder binary for an engine of ``architecture`` (as ``docker info`` says it)."""
    goarch = ARCHITECTURES.get(architecture)
    if goarch is None:
        raise StagegateError(
            Code.MANIFEST_UNSUPPORTED,
            f"a Service maps a port to a different targetPort, and the docker target's forwarder "
            f"for that is built for amd64 and arm64 engines only; this engine is {architecture}",
            "give such Services port == targetPort, or use the kind target (--target kind)",
            {"architecture": architecture},
        )
    return SOURCE_DIR / "bin" / f"tcp-forwarder-linux-{goarch}"


@dataclass
class Forwarders:
    """Makes the forwarder image (once per binary and network) and starts forwarder containers
    on ``network`` with the owner ``labels`` every created object carries."""

    docker: DockerClient
    network: str
    labels: dict[str, str]
    workdir: Path  # where the image's tar is written before import

    def start(self, plans: list[ForwarderPlan]) -> list[Container]:
        """Create and start one forwarder per plan (nothing, not even the image, without plans)."""
        if not plans:
            return []
        image = self.image()
        return [self._start(plan, image) for plan in plans]

    def image(self) -> str:
        """The forwarder image of the engine's architecture, imported when it is not there."""
        path = binary(str(self.docker.system.info().architecture or ""))
        content = path.read_bytes()
        digest = hashlib.sha256(content).hexdigest()[:12]
        ref = f"{IMAGE_REPOSITORY}:{re.sub(r'[^A-Za-z0-9_.-]', '-', self.network)[:100]}-{digest}"
        if self.docker.image.exists(ref):
            if (self.docker.image.inspect(ref).config.labels or {}).get(LABEL_OWNER) != self.labels[
                LABEL_OWNER
            ]:
                raise conflict("image", ref, self.labels.get(LABEL_PROJECT, ""))
            return ref
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            entry = tarfile.TarInfo(ENTRYPOINT.lstrip("/"))
            entry.size, entry.mode = len(content), 0o755
            tar.addfile(entry, io.BytesIO(content))
        archive = self.workdir / "tcp-forwarder.tar"
        archive.parent.mkdir(parents=True, exist_ok=True)
        archive.write_bytes(buffer.getvalue())
        self.docker.import_(
            archive,
            ref,
            changes=[f'ENTRYPOINT ["{ENTRYPOINT}"]', *(f"LABEL {k}={v}" for k, v in self.labels.items())],
        )
        archive.unlink()
        return ref

    def _start(self, plan: ForwarderPlan, image: str) -> Container:
        name = (
            f"sg-{self.network.removeprefix('stagegate-')}-{plan.namespace}-{plan.service}"[:110]
            + "-forwarder"
        )
        labels = {
            **self.labels,
            LABEL_FORWARDER: plan.service,
            LABEL_NAMESPACE: plan.namespace,
        }
        try:
            container = self.docker.container.create(
                image,
                plan.arguments,
                name=name,
                networks=[self.network],
                network_aliases=[plan.service],
                labels=labels,
                pull="never",
            )
            self.docker.container.start(container)
        except DockerException as exc:
            self._refuse_foreign(name)
            raise StagegateError(
                Code.APPLY_FAILED,
                f"the forwarder of Service/{plan.service} could not be started: {_tail(exc)}",
                "see the log; `docker ps -a --filter label=dev.stagegate.forwarder` lists the forwarders",
                {"service": plan.service, "namespace": plan.namespace, "container": name},
            ) from None
        LOG.debug("started forwarder %s for Service/%s: %s", name, plan.service, plan.arguments)
        return container

    def _refuse_foreign(self, name: str) -> None:
        try:
            found = self.docker.container.inspect(name)
        except DockerException:
            return
        if (found.config.labels or {}).get(LABEL_OWNER) != self.labels[LABEL_OWNER]:
            raise conflict("container", name, self.labels.get(LABEL_PROJECT, ""))


def _tail(exc: DockerException) -> str:
    text = (getattr(exc, "stderr", "") or str(exc)).strip().splitlines()
    return text[-1] if text else type(exc).__name__
