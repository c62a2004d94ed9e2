"""The docker target: the rendered manifests played on the Docker engine, in the spirit of
``podman kube play`` — a fast inner loop, and a real end-to-end run where kind cannot run.

Pod templates of Deployments, StatefulSets and Pods become containers (command, args, env
from values, ConfigMaps and Secrets of the same manifests, working dir, ports); a
Service's name is a network alias of the containers it selects, so in-cluster URLs such as
``http://api-server:8080`` work unchanged. Readiness probes (httpGet, tcpSocket, exec) are
run with their periods and thresholds. The pod states are reported in the Kubernetes API's
own JSON shape, so the same readiness policy and error codes apply as on kind.

Anything the translation cannot honour is refused, listed, before a container starts.
"""

from __future__ import annotations

import base64
import json
import secrets
import shutil
import socket
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from python_on_whales import Container, DockerClient
from python_on_whales.exceptions import DockerException

from tasks.clock import Clock
from tasks.errors import Code, StagegateError
from tasks.ledger import write_json_atomic
from tasks.manifests import ManifestObject
from tasks.readiness import ImageFacts, ReadinessPolicy, ReadinessWaiter, Snapshot
from tasks.retry import retry_transient
from tasks.targets import ImageToLoad, endpoint_env, namespaces

LABEL_TARGET = "dev.stagegate.target"
LABEL_PROJECT = "dev.stagegate.project"
LABEL_POD = "dev.stagegate.pod"
LABEL_CONTAINER = "dev.stagegate.container"
LABEL_INIT = "dev.stagegate.init"
LABEL_WORKLOAD = "dev.stagegate.workload"
LABEL_ALIASES = "dev.stagegate.aliases"
LABEL_SECRET_ENV = "dev.stagegate.secret-env"  # names only: their values are redacted in diagnostics

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "Pod")
PASSIVE_KINDS = ("Namespace", "Service", "ConfigMap", "Secret", "ServiceAccount")
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
PROBE_SECONDS = {"initialDelaySeconds": 0, "periodSeconds": 10, "timeoutSeconds": 1}
MAX_REPLICAS = 3


@dataclass
class ContainerPlan:
    """One container to run: everything ``docker run`` needs, decided before anything starts."""

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
    volumes: list[tuple[str, str]]  # emptyDir: (pod-scoped volume suffix, mount path)
    readiness: dict[str, Any] | None
    config_error: str | None = None  # a missing ConfigMap/Secret key: reported as the kubelet would
    secret_env: set[str] = field(default_factory=set)  # names of env vars that came from Secrets

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
            "network_aliases": self.aliases,
            "mounts": [list(m) for m in self.mounts],
            "empty_dirs": [list(v) for v in self.volumes],
            "readiness_probe": self.readiness,
            "config_error": self.config_error,
        }


@dataclass
class PodPlan:
    name: str
    namespace: str
    workload: str
    labels: dict[str, str]
    init: list[ContainerPlan]
    containers: list[ContainerPlan]


@dataclass
class _ProbeState:
    successes: int = 0
    failures: int = 0
    last_run: float | None = None
    ready: bool = False


@dataclass
class _PodRun:
    """What the engine runs for one pod, and what we learned about it."""

    plan: PodPlan
    started_at: float
    running: dict[str, Container] = field(default_factory=dict)  # container name -> container
    init_done: int = 0
    probes: dict[str, _ProbeState] = field(default_factory=dict)
    pull_errors: dict[str, str] = field(default_factory=dict)


def translate(objects: list[ManifestObject], *, workdir: Path) -> list[PodPlan]:
    """The run plan of ``objects``; refuses (listing every problem) what it cannot honour."""
    problems: list[str] = []
    config_maps = {
        (o.namespace or "default", o.name): _string_data(o.doc, False)
        for o in objects
        if o.kind == "ConfigMap"
    }
    secrets_ = {
        (o.namespace or "default", o.name): _string_data(o.doc, True) for o in objects if o.kind == "Secret"
    }
    service_list = [o for o in objects if o.kind == "Service"]
    pods: list[PodPlan] = []
    for obj in objects:
        if obj.kind in PASSIVE_KINDS:
            if obj.kind == "Service":
                problems += _service_problems(obj)
            continue
        if obj.kind not in WORKLOAD_KINDS:
            problems.append(
                f"{obj.kind}/{obj.name} ({obj.source}): kind {obj.kind} is not supported by the docker target"
            )
            continue
        namespace = obj.namespace or "default"
        if obj.kind == "Pod":
            template, replicas = (
                {"metadata": obj.doc.get("metadata") or {}, "spec": obj.doc.get("spec") or {}},
                1,
            )
        else:
            template = (obj.doc.get("spec") or {}).get("template") or {}
            replicas = int((obj.doc.get("spec") or {}).get("replicas", 1))
        spec = template.get("spec") or {}
        labels = (template.get("metadata") or {}).get("labels") or {}
        where = f"{obj.kind}/{obj.name} ({obj.source})"
        problems += [
            f"{where}: spec.{key} is not supported by the docker target"
            for key in spec
            if key not in SUPPORTED_POD_FIELDS
        ]
        for flag in ("hostNetwork", "hostPID", "hostIPC"):
            if spec.get(flag):
                problems.append(f"{where}: {flag} is not supported by the docker target")
        volumes, volume_problems = _volumes(
            spec.get("volumes") or [], namespace, config_maps, secrets_, where, workdir
        )
        problems += volume_problems
        aliases = [
            svc.name
            for svc in service_list
            if (svc.namespace or "default") == namespace and _selects(svc, labels)
        ]
        for replica in range(min(replicas, MAX_REPLICAS)):
            pod_name = obj.name if obj.kind == "Pod" else f"{obj.name}-{replica}"
            plans: dict[str, list[ContainerPlan]] = {"initContainers": [], "containers": []}
            for field_name in plans:
                for container in spec.get(field_name) or []:
                    plan, container_problems = _container_plan(
                        container,
                        pod_name,
                        namespace,
                        f"{obj.kind}/{obj.name}",
                        field_name == "initContainers",
                        config_maps,
                        secrets_,
                        volumes,
                        aliases if field_name == "containers" else [],
                        where,
                    )
                    if replica == 0:
                        problems += container_problems
                    plans[field_name].append(plan)
            pods.append(
                PodPlan(
                    pod_name,
                    namespace,
                    f"{obj.kind}/{obj.name}",
                    labels,
                    plans["initContainers"],
                    plans["containers"],
                )
            )
    if problems:
        raise StagegateError(
            Code.MANIFEST_UNSUPPORTED,
            f"the docker target cannot run these manifests as written: {problems[0]}"
            + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""),
            "use the kind target for them (--target kind), or leave these out of the manifests",
            {"unsupported": problems},
        )
    return pods


@dataclass
class DockerTarget:
    """The manifests' workloads as containers on one user-defined network of the engine."""

    project: str
    artifacts: Path
    docker: DockerClient
    clock: Clock = field(default_factory=Clock)
    name: str = field(default="docker", init=False)
    _pods: list[_PodRun] = field(default_factory=list, init=False)

    @property
    def network(self) -> str:
        return self.project if self.project.startswith("stagegate") else f"stagegate-{self.project}"

    @property
    def labels(self) -> dict[str, str]:
        return {LABEL_TARGET: "docker", LABEL_PROJECT: self.project}

    # -- up ------------------------------------------------------------------------------------
    def up(self, *, recreate: bool) -> dict[str, Any]:
        exists = self.docker.network.exists(self.network)
        if exists and recreate:
            self._remove_everything()
            exists = False
        if not exists:
            self.docker.network.create(self.network, labels=self.labels)
        return {
            "cluster": self.network,
            "action": "reused" if exists else "created",
            "created_by_stagegate": True,
        }

    def load_images(self, images: list[ImageToLoad]) -> dict[str, Any]:
        report = {}
        for image in images:
            try:
                found = retry_transient(
                    lambda ref=image.ref: self.docker.image.inspect(ref).id, sleep=self.clock.sleep
                )
            except DockerException:
                found = None
            if found != image.image_id:
                raise StagegateError(
                    Code.IMAGE_LOAD_FAILED,
                    f"{image.ref} is not in the Docker engine with the ID the build recorded",
                    "run `nox -s build` again",
                    {"image": image.name, "ref": image.ref},
                )
            report[image.name] = {"ref": image.ref, "loaded_to": [], "already_on": ["docker engine"]}
        return {"nodes": ["docker engine"], "images": report}

    # -- deploy --------------------------------------------------------------------------------
    def apply(self, objects: list[ManifestObject]) -> dict[str, Any]:
        plans = translate(objects, workdir=self.artifacts / "docker-target")
        write_json_atomic(
            self.artifacts / "docker-plan.json",
            {"network": self.network, "pods": [[c.to_json() for c in p.init + p.containers] for p in plans]},
        )
        self._remove_containers()  # a new deploy replaces the previous one
        if not self.docker.network.exists(self.network):
            self.docker.network.create(self.network, labels=self.labels)
        self._pods = []
        for plan in plans:
            run = _PodRun(plan, self.clock.monotonic())
            self._pods.append(run)
            self._advance(run)
        return {"applied": [f"pod/{p.name} ({p.workload})" for p in plans], "plan": "docker-plan.json"}

    def wait_ready(
        self,
        objects: list[ManifestObject],
        policy: ReadinessPolicy,
        images: ImageFacts,
        on_progress: Callable[..., None],
    ) -> dict[str, Any]:

        def poll() -> Snapshot:
            pods = []
            for run in self._pods:
                self._advance(run)
                pods.append(self._pod_json(run))
            workloads = [
                _workload_view(
                    workload, [p for p in pods if p["metadata"]["labels"].get(LABEL_WORKLOAD) == workload]
                )
                for workload in dict.fromkeys(run.plan.workload for run in self._pods)
            ]
            return Snapshot(workloads, pods)

        return ReadinessWaiter(policy, self.clock, images).wait(poll, on_progress)

    def _advance(self, run: _PodRun) -> None:
        """Start what may start now: the next init container, or the main containers."""
        plan = run.plan
        while run.init_done < len(plan.init):
            init = plan.init[run.init_done]
            container = run.running.get(init.name)
            if container is None:
                self._start(run, init)
                return
            state = self._state(container)
            if state.running:
                return
            if state.exit_code == 0:
                run.init_done += 1
                continue
            return  # failed: the pod JSON reports it
        for main in plan.containers:
            if (
                main.name not in run.running
                and main.name not in run.pull_errors
                and main.config_error is None
            ):
                self._start(run, main)
            if main.name in run.running and main.readiness is not None:
                self._probe(run, main)

    def _start(self, run: _PodRun, plan: ContainerPlan) -> None:
        if plan.config_error is not None:
            return
        if not self._image_present(plan.image):
            run.pull_errors[plan.name] = (
                f"image {plan.image} is not in the Docker engine and could not be pulled"
            )
            return
        labels = {
            **self.labels,
            LABEL_POD: plan.pod,
            LABEL_WORKLOAD: plan.workload,
            LABEL_CONTAINER: plan.name,
            LABEL_INIT: str(plan.init).lower(),
            LABEL_ALIASES: ",".join(plan.aliases),
            LABEL_SECRET_ENV: ",".join(sorted(plan.secret_env)),
        }
        container = self.docker.run(
            plan.image,
            plan.command,
            detach=True,
            name=f"sg-{self.project}-{plan.pod}-{plan.name}-{secrets.token_hex(2)}"[:120],
            entrypoint=plan.entrypoint,
            envs=plan.env,
            workdir=plan.workdir,
            networks=[self.network],
            network_aliases=plan.aliases,
            publish=[("127.0.0.1:", port) for port in plan.ports],
            volumes=[*plan.mounts, *((self._volume(plan.pod, name), path) for name, path in plan.volumes)],
            labels=labels,
            pull="never",
        )
        run.running[plan.name] = container

    def _volume(self, pod: str, name: str) -> str:
        """The Docker volume behind an emptyDir: shared by the pod's containers, like Kubernetes'."""
        volume = f"{self.network}-{pod}-{name}"
        if not self.docker.volume.exists(volume):
            self.docker.volume.create(volume, labels=self.labels)
        return volume

    def _image_present(self, image: str) -> bool:
        if self.docker.image.exists(image):
            return True
        try:
            retry_transient(lambda: self.docker.image.pull(image, quiet=True), sleep=self.clock.sleep)
            return True
        except DockerException:
            return False

    def _state(self, container: Container) -> Any:
        return retry_transient(
            lambda: self.docker.container.inspect(container.id).state, sleep=self.clock.sleep
        )

    def _probe(self, run: _PodRun, plan: ContainerPlan) -> None:
        probe = plan.readiness or {}
        state = run.probes.setdefault(plan.name, _ProbeState())
        now = self.clock.monotonic()
        seconds = {k: float(probe.get(k, default)) for k, default in PROBE_SECONDS.items()}
        if now - run.started_at < seconds["initialDelaySeconds"]:
            return
        if state.last_run is not None and now - state.last_run < seconds["periodSeconds"]:
            return
        state.last_run = now
        ok = self._probe_once(run.running[plan.name], plan, probe, seconds["timeoutSeconds"])
        if ok:
            state.successes, state.failures = state.successes + 1, 0
            if state.successes >= int(probe.get("successThreshold", 1)):
                state.ready = True
        else:
            state.failures, state.successes = state.failures + 1, 0
            if state.failures >= int(probe.get("failureThreshold", 3)):
                state.ready = False

    def _probe_once(
        self, container: Container, plan: ContainerPlan, probe: dict[str, Any], timeout: float
    ) -> bool:
        try:
            if "exec" in probe:
                self.docker.execute(container, list(probe["exec"].get("command") or []))
                return True
            action = probe.get("httpGet") or probe.get("tcpSocket") or {}
            port = _container_port(action.get("port"), plan)
            host_port = self._host_port(container, port)
            if host_port is None:
                return False
            if "httpGet" in probe:
                path = action.get("path", "/")
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{host_port}{path}", timeout=timeout
                ) as response:
                    return 200 <= response.status < 400
            with socket.create_connection(("127.0.0.1", host_port), timeout=timeout):
                return True
        except (DockerException, OSError, urllib.error.URLError, ValueError):
            return False
        return False

    def _host_port(self, container: Container, port: int | None) -> int | None:
        if port is None:
            return None
        ports = (self.docker.container.inspect(container.id).network_settings.ports or {}).get(
            f"{port}/tcp"
        ) or []
        if not ports:
            return None
        entry = ports[0]
        return int(entry["HostPort"] if isinstance(entry, dict) else entry.host_port)

    def _pod_json(self, run: _PodRun) -> dict[str, Any]:
        """The pod as the Kubernetes API would show it (the fields the readiness policy reads)."""
        plan = run.plan
        init_statuses = []
        for index, init in enumerate(plan.init):
            status = self._container_status(run, init)
            if index < run.init_done:
                status["state"] = {"terminated": {"exitCode": 0, "reason": "Completed"}}
            init_statuses.append(status)
        initialized = run.init_done >= len(plan.init)
        statuses = []
        for main in plan.containers:
            status = (
                self._container_status(run, main)
                if initialized or main.config_error
                else {
                    "name": main.name,
                    "image": main.image,
                    "ready": False,
                    "restartCount": 0,
                    "state": {"waiting": {"reason": "PodInitializing"}},
                    "lastState": {},
                }
            )
            statuses.append(status)
        ready = initialized and all(s["ready"] for s in statuses)
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": plan.name,
                "namespace": plan.namespace,
                "labels": {**plan.labels, LABEL_WORKLOAD: plan.workload},
            },
            "spec": {
                "containers": [{"name": c.name, "image": c.image} for c in plan.containers],
                "initContainers": [{"name": c.name, "image": c.image} for c in plan.init],
            },
            "status": {
                "phase": "Running" if initialized else "Pending",
                "conditions": [
                    {"type": "PodScheduled", "status": "True"},
                    {"type": "Initialized", "status": "True" if initialized else "False"},
                    {"type": "Ready", "status": "True" if ready else "False"},
                ],
                "initContainerStatuses": init_statuses,
                "containerStatuses": statuses,
            },
        }

    def _container_status(self, run: _PodRun, plan: ContainerPlan) -> dict[str, Any]:
        base = {"name": plan.name, "image": plan.image, "ready": False, "restartCount": 0, "lastState": {}}
        if plan.config_error is not None:
            return {
                **base,
                "state": {"waiting": {"reason": "CreateContainerConfigError", "message": plan.config_error}},
            }
        if plan.name in run.pull_errors:
            return {
                **base,
                "state": {"waiting": {"reason": "ErrImagePull", "message": run.pull_errors[plan.name]}},
            }
        container = run.running.get(plan.name)
        if container is None:
            return {**base, "state": {"waiting": {"reason": "ContainerCreating"}}}
        state = self._state(container)
        if state.running:
            probe = run.probes.get(plan.name)
            ready = not plan.init and (plan.readiness is None or (probe is not None and probe.ready))
            return {**base, "ready": ready, "state": {"running": {"startedAt": str(state.started_at)}}}
        if plan.init and state.exit_code == 0:
            return {**base, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}
        # Exited: under Kubernetes the kubelet would restart it and report CrashLoopBackOff.
        reason = "OOMKilled" if state.oom_killed else ("Completed" if state.exit_code == 0 else "Error")
        return {
            **base,
            "restartCount": 1,
            "state": {
                "waiting": {
                    "reason": "CrashLoopBackOff",
                    "message": "exited; the docker target does not restart",
                }
            },
            "lastState": {
                "terminated": {
                    "exitCode": state.exit_code,
                    "reason": reason,
                    "finishedAt": str(state.finished_at),
                }
            },
        }

    # -- e2e -----------------------------------------------------------------------------------
    @contextmanager
    def endpoints(self, objects: list[ManifestObject]) -> Iterator[dict[str, str]]:
        """Service ports as published on 127.0.0.1 by a running container the Service selects."""
        spaces = namespaces(objects)
        env = {"STAGEGATE_TARGET": self.name, "STAGEGATE_NAMESPACE": spaces[0] if spaces else "default"}
        running = [c for c in self._containers() if self._state(c).running]
        for service in (o for o in objects if o.kind == "Service"):
            members = [
                c for c in running if service.name in c.config.labels.get(LABEL_ALIASES, "").split(",")
            ]
            for position, port in enumerate((service.doc.get("spec") or {}).get("ports") or []):
                host_port = next(
                    (found for c in members if (found := self._host_port(c, _target_port(port))) is not None),
                    None,
                )
                if host_port is not None:
                    env.update(
                        endpoint_env(service.name, int(port["port"]), f"127.0.0.1:{host_port}", position == 0)
                    )
        yield env

    # -- diagnostics and teardown --------------------------------------------------------------
    def collect_diagnostics(self, objects: list[ManifestObject], dest: Path) -> list[str]:
        written: list[str] = []
        dest.mkdir(parents=True, exist_ok=True)
        plan = self.artifacts / "docker-plan.json"
        if plan.exists():
            shutil.copy(plan, dest / "docker-plan.json")
            written.append(str(dest / "docker-plan.json"))
        if self._pods:
            pods = [self._pod_json(run) for run in self._pods]
            (dest / "pods.json").write_text(
                json.dumps({"apiVersion": "v1", "kind": "List", "items": pods}, indent=2)
            )
            written.append(str(dest / "pods.json"))
        for container in self._containers():
            labels = container.config.labels
            base = dest / "containers" / f"{labels.get(LABEL_POD)}_{labels.get(LABEL_CONTAINER)}"
            base.parent.mkdir(parents=True, exist_ok=True)
            try:
                inspected = self.docker.container.inspect(container.id)._get_inspect_result()
                document = inspected.model_dump(mode="json", by_alias=True)
                secret_names = set(filter(None, labels.get(LABEL_SECRET_ENV, "").split(",")))
                config = document.get("Config") or {}
                config["Env"] = [
                    f"{entry.split('=', 1)[0]}=<redacted>"
                    if entry.split("=", 1)[0] in secret_names
                    else entry
                    for entry in config.get("Env") or []
                ]
                base.with_suffix(".inspect.json").write_text(json.dumps(document, indent=2))
                base.with_suffix(".log").write_text(self.docker.container.logs(container, timestamps=True))
                written += [str(base.with_suffix(".inspect.json")), str(base.with_suffix(".log"))]
            except Exception as exc:  # diagnostics never fail the report they are for
                with (dest / "problems.txt").open("a") as problems:
                    problems.write(f"{container.name}: {type(exc).__name__}: {exc}\n")
        return written

    def teardown(self, *, delete: bool) -> dict[str, Any]:
        had_network = self.docker.network.exists(self.network)
        removed = self._remove_everything()
        what = f"{removed} container(s)" + (f" and network {self.network}" if had_network else "")
        return {"cluster": self.network, "deleted": what}

    def _containers(self) -> list[Container]:
        return self.docker.container.list(
            all=True,
            filters=[("label", f"{LABEL_TARGET}=docker"), ("label", f"{LABEL_PROJECT}={self.project}")],
        )

    def _remove_containers(self) -> int:
        containers = self._containers()
        if containers:
            self.docker.container.remove(containers, force=True, volumes=True)
        return len(containers)

    def _remove_everything(self) -> int:
        removed = self._remove_containers()
        volumes = self.docker.volume.list(
            filters=[("label", f"{LABEL_TARGET}=docker"), ("label", f"{LABEL_PROJECT}={self.project}")]
        )
        if volumes:
            self.docker.volume.remove(volumes)
        if self.docker.network.exists(self.network):
            self.docker.network.remove(self.network)
        shutil.rmtree(self.artifacts / "docker-target", ignore_errors=True)
        return removed


# -- translation helpers -----------------------------------------------------------------------


def _container_plan(
    container: dict[str, Any],
    pod: str,
    namespace: str,
    workload: str,
    init: bool,
    config_maps: dict,
    secrets_: dict,
    volumes: dict[str, tuple[str, str]],
    aliases: list[str],
    where: str,
) -> tuple[ContainerPlan, list[str]]:
    name = str(container.get("name", ""))
    where = f"{where} container {name!r}"
    problems = [
        f"{where}: {key} is not supported by the docker target"
        for key in container
        if key not in SUPPORTED_CONTAINER_FIELDS
    ]
    if (container.get("securityContext") or {}).get("privileged"):
        problems.append(f"{where}: privileged is not supported by the docker target")
    env: dict[str, str] = {}
    secret_env: set[str] = set()
    config_error = None
    for source in container.get("envFrom") or []:
        ref = source.get("configMapRef") or source.get("secretRef") or {}
        table = config_maps if "configMapRef" in source else secrets_
        data = table.get((namespace, ref.get("name")))
        if data is None and not ref.get("optional"):
            kind = "configmap" if "configMapRef" in source else "secret"
            config_error = config_error or f'{kind} "{ref.get("name")}" not found'
        for key, value in (data or {}).items():
            env[f"{source.get('prefix', '')}{key}"] = value
            if "secretRef" in source:
                secret_env.add(f"{source.get('prefix', '')}{key}")
    for entry in container.get("env") or []:
        key = str(entry.get("name"))
        if "value" in entry or "valueFrom" not in entry:
            env[key] = str(entry.get("value", ""))
            continue
        value_from = entry["valueFrom"]
        ref = value_from.get("configMapKeyRef") or value_from.get("secretKeyRef")
        if ref is None:
            field_ref = (value_from.get("fieldRef") or {}).get("fieldPath")
            if field_ref in ("metadata.name", "metadata.namespace"):
                env[key] = pod if field_ref == "metadata.name" else namespace
            else:
                problems.append(
                    f"{where}: env {key} valueFrom {sorted(value_from)} is not supported by the docker target"
                )
            continue
        is_secret = "secretKeyRef" in value_from
        data = (secrets_ if is_secret else config_maps).get((namespace, ref.get("name")))
        if data is None or ref.get("key") not in data:
            if not ref.get("optional"):
                kind = "Secret" if is_secret else "ConfigMap"
                config_error = config_error or (
                    f'{kind.lower()} "{ref.get("name")}" not found'
                    if data is None
                    else f"couldn't find key {ref.get('key')} in {kind} {namespace}/{ref.get('name')}"
                )
            continue
        env[key] = data[ref["key"]]
        if is_secret:
            secret_env.add(key)
    command = list(container.get("command") or [])
    args = list(container.get("args") or [])
    mounts: list[tuple[str, str, str]] = []
    empty_dirs: list[tuple[str, str]] = []
    for mount in container.get("volumeMounts") or []:
        volume = volumes.get(mount.get("name"))
        if volume is None:
            problems.append(f"{where}: volumeMount {mount.get('name')!r} names no supported volume")
        elif volume[0] == "emptyDir":
            empty_dirs.append((str(mount.get("name")), str(mount["mountPath"])))
        else:
            mounts.append((volume[1], str(mount["mountPath"]), "ro"))
    probe = container.get("readinessProbe")
    if probe is not None and not {"httpGet", "tcpSocket", "exec"} & set(probe):
        problems.append(f"{where}: readinessProbe {sorted(probe)} is not supported by the docker target")
    ports = [int(p["containerPort"]) for p in container.get("ports") or [] if "containerPort" in p]
    plan = ContainerPlan(
        pod=pod,
        namespace=namespace,
        workload=workload,
        name=name,
        image=str(container.get("image", "")),
        init=init,
        entrypoint=command[0] if command else None,
        command=(command[1:] + args) if command else args,
        env=env,
        workdir=container.get("workingDir"),
        ports=ports,
        aliases=aliases,
        mounts=mounts,
        volumes=empty_dirs,
        readiness=_with_named_port(probe, container) if probe else None,
        config_error=config_error,
        secret_env=secret_env,
    )
    return plan, problems


def _with_named_port(probe: dict[str, Any], container: dict[str, Any]) -> dict[str, Any]:
    probe = json.loads(json.dumps(probe))
    for action in ("httpGet", "tcpSocket"):
        port = (probe.get(action) or {}).get("port")
        if isinstance(port, str) and not port.isdigit():
            named = {p.get("name"): p.get("containerPort") for p in container.get("ports") or []}
            probe[action]["port"] = named.get(port)
    return probe


def _container_port(port: Any, plan: ContainerPlan) -> int | None:
    if port is None:
        return plan.ports[0] if plan.ports else None
    return int(port)


def _volumes(
    volumes: list[dict[str, Any]],
    namespace: str,
    config_maps: dict,
    secrets_: dict,
    where: str,
    workdir: Path,
) -> tuple[dict[str, tuple[str, str]], list[str]]:
    found: dict[str, tuple[str, str]] = {}
    problems: list[str] = []
    for volume in volumes:
        name = str(volume.get("name"))
        if "emptyDir" in volume:
            found[name] = ("emptyDir", "")
        elif "configMap" in volume or "secret" in volume:
            is_secret = "secret" in volume
            ref = volume["secret"].get("secretName") if is_secret else volume["configMap"].get("name")
            data = (secrets_ if is_secret else config_maps).get((namespace, ref))
            if data is None:
                problems.append(
                    f"{where}: volume {name!r} refers to {'Secret' if is_secret else 'ConfigMap'} "
                    f"{ref!r}, which the manifests do not define"
                )
                continue
            folder = workdir / namespace / f"{'secret' if is_secret else 'configmap'}-{ref}"
            folder.mkdir(parents=True, exist_ok=True)
            for key, value in data.items():
                (folder / key).write_text(value)
            found[name] = ("files", str(folder.resolve()))
        else:
            kinds = sorted(set(volume) - {"name"})
            problems.append(
                f"{where}: volume {name!r} of type {kinds} is not supported by the docker target "
                "(emptyDir, configMap and secret are)"
            )
    return found, problems


def _service_problems(service: ManifestObject) -> list[str]:
    problems = []
    spec = service.doc.get("spec") or {}
    if spec.get("type") not in (None, "ClusterIP"):
        problems.append(
            f"Service/{service.name} ({service.source}): type {spec.get('type')} is not supported by the "
            "docker target (ClusterIP is)"
        )
    for port in spec.get("ports") or []:
        target = port.get("targetPort", port.get("port"))
        if isinstance(target, int) and target != port.get("port"):
            problems.append(
                f"Service/{service.name} ({service.source}): port {port.get('port')} -> targetPort "
                f"{target}: the docker target needs port == targetPort (network aliases do not map ports)"
            )
    return problems


def _target_port(port: dict[str, Any]) -> int:
    target = port.get("targetPort", port.get("port"))
    if isinstance(target, int) or (isinstance(target, str) and target.isdigit()):
        return int(target)
    return int(port.get("port"))


def _selects(service: ManifestObject, labels: dict[str, str]) -> bool:
    selector = (service.doc.get("spec") or {}).get("selector") or {}
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def _string_data(doc: dict[str, Any], secret: bool) -> dict[str, str]:
    data = {str(k): str(v) for k, v in (doc.get("stringData") or {}).items()}
    for key, value in (doc.get("data") or {}).items():
        data[str(key)] = base64.b64decode(str(value)).decode() if secret else str(value)
    return data


def _workload_view(workload: str, pods: list[dict[str, Any]]) -> dict[str, Any]:
    """The workload as the Kubernetes API would show it, its status counted from its pods."""
    kind, name = workload.split("/", 1)
    if kind == "Pod":
        return pods[0]
    ready = sum(
        1
        for p in pods
        if any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"]["conditions"])
    )
    replicas = len(pods)
    status: dict[str, Any] = {"observedGeneration": 1, "replicas": replicas, "readyReplicas": ready}
    if kind == "Deployment":
        status.update(updatedReplicas=replicas, availableReplicas=ready, unavailableReplicas=replicas - ready)
    return {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": {
            "name": name,
            "namespace": pods[0]["metadata"]["namespace"] if pods else "default",
            "generation": 1,
        },
        "spec": {"replicas": replicas, "selector": {"matchLabels": {LABEL_WORKLOAD: workload}}},
        "status": status,
    }
