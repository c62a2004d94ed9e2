"""The plans: what the docker target will run, as decided from the manifests before anything
starts (:mod:`.translate` makes them; the kubelet and the controllers run them)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field, replace
from typing import Any

SUPPORTED_POD_FIELDS = {
    "containers",
    "initContainers",
    "volumes",
    "restartPolicy",
    "terminationGracePeriodSeconds",
    "serviceAccountName",
    "serviceAccount",
    "securityContext",
    "nodeSelector",
    "affinity",
    "tolerations",
    "dnsPolicy",
    "enableServiceLinks",
    "imagePullSecrets",
    "priorityClassName",
    "automountServiceAccountToken",
}  # scheduling and account fields have no meaning on one engine and are ignored
SUPPORTED_CONTAINER_FIELDS = {
    "name",
    "image",
    "command",
    "args",
    "env",
    "envFrom",
    "workingDir",
    "ports",
    "readinessProbe",
    "livenessProbe",
    "startupProbe",
    "imagePullPolicy",
    "resources",
    "volumeMounts",
    "securityContext",
    "terminationMessagePath",
    "terminationMessagePolicy",
    "stdin",
    "tty",
}
SUPPORTED_JOB_FIELDS = {"template", "backoffLimit", "completions", "parallelism", "ttlSecondsAfterFinished"}
PROBE_KINDS = ("startupProbe", "readinessProbe", "livenessProbe")
MAX_REPLICAS = 3  # per Deployment/StatefulSet, and a Job's parallelism: one engine, small stacks
# The kube-controller-manager's random suffix of generated names (apimachinery rand.String).
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def name_suffix() -> str:
    """Five characters as in ``migrate-x7k2p``: the suffix of a Job's pod names."""
    return "".join(secrets.choice(_NAME_ALPHABET) for _ in range(5))


@dataclass
class ContainerPlan:
    """One container to run: everything ``docker run`` needs."""

    pod: str
    namespace: str
    workload: str
    name: str
    image: str
    init: bool
    entrypoint: str | None
    command: list[str]
    env: dict[str, str]
    workdir: str | None
    ports: list[int]
    aliases: list[str]
    mounts: list[tuple[str, str, str]]
    volumes: list[tuple[str, str]]  # emptyDir: (volume name, mount path)
    readiness: dict[str, Any] | None
    liveness: dict[str, Any] | None = None
    startup: dict[str, Any] | None = None
    named_ports: dict[str, int] = field(default_factory=dict)
    spec: dict[str, Any] = field(default_factory=dict)  # the container as the manifest wrote it
    config_error: str | None = None  # a missing ConfigMap/Secret key: reported as the kubelet would
    secret_env: set[str] = field(default_factory=set)  # names of env vars that came from Secrets
    pod_name_env: set[str] = field(default_factory=set)  # env vars holding metadata.name

    def probe(self, kind: str) -> dict[str, Any] | None:
        """``startupProbe``, ``readinessProbe`` or ``livenessProbe``, named ports resolved."""
        return {
            "startupProbe": self.startup,
            "readinessProbe": self.readiness,
            "livenessProbe": self.liveness,
        }[kind]

    @property
    def published(self) -> list[int]:
        """Ports published on 127.0.0.1: the declared ones and those the probes use."""
        found = list(self.ports)
        for kind in PROBE_KINDS:
            action = probe_action(self.probe(kind))
            port = action.get("port") if action else None
            if isinstance(port, int) and port not in found:
                found.append(port)
        return found

    def to_json(self) -> dict[str, Any]:
        shown = {k: ("<redacted>" if k in self.secret_env else v) for k, v in self.env.items()}
        return {
            "pod": self.pod,
            "workload": self.workload,
            "container": self.name,
            "init": self.init,
            "image": self.image,
            "entrypoint": self.entrypoint,
            "command": self.command,
            "env": shown,
            "workdir": self.workdir,
            "ports": self.ports,
            "named_ports": self.named_ports,
            "network_aliases": self.aliases,
            "mounts": [list(m) for m in self.mounts],
            "empty_dirs": [list(v) for v in self.volumes],
            "probes": {k: p for k in PROBE_KINDS if (p := self.probe(k)) is not None},
            "config_error": self.config_error,
        }


@dataclass
class WorkloadPlan:
    """A Deployment, StatefulSet, Job or bare Pod as applied: what its status is computed from."""

    kind: str
    name: str
    namespace: str
    metadata: dict[str, Any]  # labels, annotations, generation as the manifest wrote them
    spec: dict[str, Any]  # the manifest's spec (a bare Pod: its pod spec)
    replicas: int  # pods run: spec.replicas capped; a Job: its parallelism, capped
    template_hash: str  # pod-template-hash / controller revision: from the template's content
    uid: str = field(default_factory=lambda: new_uid())

    @property
    def id(self) -> str:
        return f"{self.kind}/{self.name}"

    @property
    def restart_policy(self) -> str:
        return str(pod_template(self.kind, self.spec).get("restartPolicy") or "Always")


@dataclass
class PodPlan:
    name: str
    namespace: str
    workload: str
    labels: dict[str, str]
    init: list[ContainerPlan]
    containers: list[ContainerPlan]
    annotations: dict[str, str] = field(default_factory=dict)
    restart_policy: str = "Always"
    termination_grace: float = 30.0
    owner: WorkloadPlan | None = None

    def renamed(self, name: str) -> PodPlan:
        """The same template as another pod ``name`` (a Job's replacement pod)."""

        def rename(container: ContainerPlan) -> ContainerPlan:
            env = {k: (name if k in container.pod_name_env else v) for k, v in container.env.items()}
            return replace(container, pod=name, env=env)

        return replace(
            self,
            name=name,
            init=[rename(c) for c in self.init],
            containers=[rename(c) for c in self.containers],
        )


@dataclass(frozen=True)
class ForwarderPlan:
    """A Service whose ports differ from their targets: a forwarder container carries the
    Service's name as its alias and maps each ``port`` to ``target`` on the pods, which it
    finds through ``backend``, the alias that only they carry (see :func:`backend_alias`)."""

    service: str
    namespace: str
    backend: str
    ports: tuple[tuple[int, int], ...]  # (port, targetPort), targetPort resolved to a number

    @property
    def arguments(self) -> list[str]:
        """The forwarder's command line: ``BACKEND PORT:TARGET ...``."""
        return [self.backend, *(f"{port}:{target}" for port, target in self.ports)]

    def to_json(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "namespace": self.namespace,
            "network_aliases": [self.service],
            "backend": self.backend,
            "ports": [{"port": port, "targetPort": target} for port, target in self.ports],
        }


def backend_alias(service: str, namespace: str) -> str:
    """The network alias of the pods behind a forwarded Service: only its forwarder looks it
    up. The dots keep it from ever being a Service's name (a DNS-1035 label has none), and the
    last label from being a Kubernetes name such as ``api.demo.svc``."""
    return f"{service}.{namespace}.stagegate-pods"


def probe_action(probe: dict[str, Any] | None) -> dict[str, Any] | None:
    """The ``httpGet`` or ``tcpSocket`` part of a probe (None for exec probes and no probe)."""
    if not probe:
        return None
    return probe.get("httpGet") or probe.get("tcpSocket")


def target_port(port: dict[str, Any], named: dict[str, int]) -> int | None:
    """A Service port's ``targetPort``: a number, or a name resolved among the container's ports."""
    target = port.get("targetPort", port.get("port"))
    if isinstance(target, int) or (isinstance(target, str) and target.isdigit()):
        return int(target)
    return named.get(str(target))


def new_uid() -> str:
    raw = secrets.token_hex(16)
    return f"{raw[:8]}-{raw[8:12]}-{raw[12:16]}-{raw[16:20]}-{raw[20:]}"


def pod_template(kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    return spec if kind == "Pod" else (spec.get("template") or {}).get("spec") or {}
