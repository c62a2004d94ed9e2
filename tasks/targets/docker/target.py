"""The :class:`DockerTarget`: the Target interface over the translator, the kubelet and the
controllers. One user-defined network per project and owner; everything created carries the
owner labels, and only what carries this owner's id is ever reused or removed: an object of
stagegate's name without it is a ``RESOURCE_CONFLICT``, never adopted and never deleted."""

from __future__ import annotations

import io
import json
import re
import shutil
import tarfile
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from python_on_whales import Container, DockerClient
from python_on_whales.exceptions import DockerException

from ...clock import Clock, iso
from ...errors import Code, StagegateError
from ...ledger import write_json_atomic
from ...manifests import ManifestObject
from ...ownership import owner_id, short
from ...readiness import ReadinessWaiter, Snapshot, Watch
from ...redact import redact
from ...retry import retry_transient
from .. import ImageToLoad, endpoint_env, env_name, namespaces, provided_config
from ..forwards import ResolvedForward, claimed_names
from .controllers import (
    JobController,
    JobRun,
    Progress,
    deployment_json,
    job_json,
    statefulset_json,
)
from .events import EventRecorder, ObjectRef
from .forwarder import Forwarders
from .kubelet import Kubelet
from .labels import (
    LABEL_ALIASES,
    LABEL_CONTAINER,
    LABEL_FORWARDER,
    LABEL_NAMESPACE,
    LABEL_OWNER,
    LABEL_POD,
    LABEL_PORTS,
    LABEL_PROJECT,
    LABEL_RESTARTS,
    LABEL_SECRET_ENV,
    LABEL_TARGET,
    LABEL_WORKLOAD,
    conflict,
)
from .plans import PodPlan, WorkloadPlan, backend_alias, name_suffix, target_port
from .pods import PodRun
from .status import Backoff
from .translate import forwarder_plans, translate, without_custom_resources
from .volumes import SECRETS_DIR


@dataclass
class DockerTarget:
    """The manifests' workloads as containers on one user-defined network of the engine.

    ``backoff_base`` and ``backoff_cap`` are the kubelet's crash back-off (and the Job
    controller's pod-failure back-off): 10 s doubling to 300 s, as on a real node."""

    project: str
    artifacts: Path
    docker: DockerClient
    clock: Clock = field(default_factory=Clock)
    backoff_base: float = 10.0
    backoff_cap: float = 300.0
    owner: str = ""  # the owner id; by default the artifacts dir's (stagegate.ownership)
    name: str = field(default="docker", init=False)
    place: str = field(default="docker network", init=False)  # what the terminal calls it
    keeps_local_port: bool = field(default=False, init=False)  # the engine chooses published ports
    pulls_pinned_images = False  # the images are on this engine
    _pods: list[PodRun] = field(default_factory=list, init=False)
    _workloads: list[WorkloadPlan] = field(default_factory=list, init=False)
    _jobs: dict[str, JobRun] = field(default_factory=dict, init=False)
    _progress: dict[str, Progress] = field(default_factory=dict, init=False)
    _config: dict[tuple[str, str, str], frozenset[str]] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self.owner = self.owner or owner_id(self.artifacts)
        self.events = EventRecorder(self.clock)
        self.kubelet = Kubelet(
            self.docker,
            self.clock,
            self.network,
            self.labels,
            self.events,
            Backoff(self.backoff_base, self.backoff_cap),
            self._empty_dir_image,
        )
        self.jobs = JobController(self.clock, self.events, self.backoff_base, self.backoff_cap)
        self.forwarders = Forwarders(self.docker, self.network, self.labels, self.workdir)

    @property
    def network(self) -> str:
        """``stagegate-<project>-<owner>``: two checkouts with the same cluster name on one
        engine get a network (and containers, volumes) each."""
        base = self.project if self.project.startswith("stagegate") else f"stagegate-{self.project}"
        return f"{base}-{short(self.owner)}"

    @property
    def labels(self) -> dict[str, str]:
        return {LABEL_TARGET: "docker", LABEL_PROJECT: self.project, LABEL_OWNER: self.owner}

    # -- up ------------------------------------------------------------------------------------
    def up(self, *, recreate: bool) -> dict[str, Any]:
        exists = self._our_network()
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

    @property
    def where(self) -> str:
        return f"name {self.project!r}"

    def remove_ours(self) -> dict[str, Any]:
        """The containers and network of this checkout's project: all of them stagegate's."""
        return self.teardown(delete=True)

    def load_images(self, images: list[ImageToLoad], archive: Path | None = None) -> dict[str, Any]:
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
            report[image.name] = {
                "ref": image.ref,
                "loaded_to": [],
                "already_on": ["docker engine"],
                "summary": "in the Docker engine, where the docker target runs it (nothing to load)",
            }
        return {"nodes": ["docker engine"], "images": report}

    # -- deploy --------------------------------------------------------------------------------
    def apply(self, objects: list[ManifestObject]) -> dict[str, Any]:
        with self._secrets_forgotten_on_failure():
            return self._apply(objects)

    def _apply(self, objects: list[ManifestObject]) -> dict[str, Any]:
        self.forget_secrets()  # the previous deploy's
        objects, skipped = without_custom_resources(objects)
        plans = translate(objects, workdir=self.workdir)
        forwarders = forwarder_plans(objects, plans)
        write_json_atomic(
            self.artifacts / "docker-plan.json",
            {
                "network": self.network,
                "pods": [[c.to_json() for c in p.init + p.containers] for p in plans],
                "forwarders": [f.to_json() for f in forwarders],
            },
        )
        self._remove_containers()  # a new deploy replaces the previous one: new pods, new emptyDirs
        self._remove_volumes()
        if not self._our_network():
            self.docker.network.create(self.network, labels=self.labels)
        self._pods, self._workloads, self._jobs, self._progress = [], [], {}, {}
        self._config = provided_config(objects)
        self.events.clear()
        self.forwarders.start(forwarders)
        for plan in plans:
            assert plan.owner is not None
            if plan.owner not in self._workloads:
                self._workloads.append(plan.owner)
            pod = self._new_pod(plan)
            if plan.owner.kind == "Job":
                job = self._jobs.setdefault(plan.owner.uid, JobRun(plan.owner, plan, self.clock.now()))
                job.pods.append(pod)
                self.events.record(
                    _job_ref(plan.owner),
                    "SuccessfulCreate",
                    f"Created pod: {plan.name}",
                    component="job-controller",
                )
        self.snapshot()
        return {
            "applied": [f"pod/{p.name} ({p.workload})" for p in plans]
            + [f"forwarder/{f.service} ({' '.join(f.arguments[1:])})" for f in forwarders],
            "plan": "docker-plan.json",
            "skipped": skipped,
        }

    def snapshot(self) -> Snapshot:
        """One pass of the kubelet and the controllers, then the state as the API would show it:
        the workloads, their pods, and the events so far."""
        for pod in list(self._pods):
            self.kubelet.sync(pod)
        for job in self._jobs.values():
            self.jobs.sync(
                job,
                lambda pod: self.kubelet.pod_json(pod)["status"]["phase"],
                lambda pod: sum(r.restart_count for r in pod.init + pod.containers),
                self._new_pod,
                self.kubelet.kill,
                lambda job_name: f"{job_name}-{name_suffix()}",
            )
        pods = [self.kubelet.pod_json(pod) for pod in self._pods]
        now = iso(self.clock.now())
        workloads = []
        for plan in self._workloads:
            mine = [p for run, p in zip(self._pods, pods, strict=True) if run.plan.owner is plan]
            if plan.kind == "Pod":
                workloads += mine
            elif plan.kind == "Job":
                workloads.append(job_json(self._jobs[plan.uid], mine, now))
            elif plan.kind == "Deployment":
                progress = self._progress.setdefault(plan.uid, Progress())
                workloads.append(deployment_json(plan, mine, progress, self.clock.monotonic(), now))
            else:
                workloads.append(statefulset_json(plan, mine))
        return Snapshot(workloads, pods, self.events.to_json(), self._config)

    def restart_now(self, namespace: str, pod: str) -> bool:
        """Restart ``pod``'s containers that wait out a crash back-off now (their back-off
        starts again from ``backoff_base``); True when something was restarted."""
        return any(
            self.kubelet.restart_now(run)
            for run in self._pods
            if (run.plan.namespace, run.plan.name) == (namespace, pod)
        )

    def wait_ready(self, objects: list[ManifestObject], watch: Watch) -> dict[str, Any]:
        with self._secrets_forgotten_on_failure():
            return ReadinessWaiter(watch.policy, self.clock, watch.images).wait(
                self.snapshot, watch.on_progress, restart=self.restart_now
            )

    # -- decoded Secrets -----------------------------------------------------------------------
    @property
    def workdir(self) -> Path:
        """The files the target writes (ConfigMap and Secret volumes, the emptyDir seed)."""
        return self.artifacts / "docker-target"

    def forget_secrets(self) -> None:
        """Remove the decoded Secret files. They exist while a deploy is live (its containers
        mount them, e2e needs them); every failure of deploy or e2e removes them, as teardown
        does: a cluster kept for debugging keeps no Secret in clear on this machine (its
        containers then see an empty Secret volume)."""
        shutil.rmtree(self.workdir / SECRETS_DIR, ignore_errors=True)

    @contextmanager
    def _secrets_forgotten_on_failure(self) -> Iterator[None]:
        try:
            yield
        except BaseException:  # a failed, interrupted or crashed deploy or e2e alike
            self.forget_secrets()
            raise

    def _new_pod(self, plan: PodPlan) -> PodRun:
        pod = self.kubelet.create(plan, _new_uid())
        self._pods.append(pod)
        return pod

    # -- e2e -----------------------------------------------------------------------------------
    @contextmanager
    def endpoints(
        self, objects: list[ManifestObject], forwards: Sequence[ResolvedForward] = ()
    ) -> Iterator[dict[str, str]]:
        """Service ports as published on 127.0.0.1 by a running container the Service selects,
        then each ``port_forward`` entry's port as its workload's running container publishes it
        (read from the engine: the e2e stage may run in another process than deploy). The
        published port is the engine's choice: a ``local_port`` is not kept here."""
        spaces = namespaces(objects)
        env = {"STAGEGATE_TARGET": self.name, "STAGEGATE_NAMESPACE": spaces[0] if spaces else "default"}
        running = [c for c in self._containers() if c.state.running]
        claimed = claimed_names(forwards)
        for service in (o for o in objects if o.kind == "Service"):
            if env_name(service.name) in claimed:
                continue
            for position, port in enumerate((service.doc.get("spec") or {}).get("ports") or []):
                host_port = self._service_host_port(service, port, running)
                if host_port is not None:
                    env.update(
                        endpoint_env(service.name, int(port["port"]), f"127.0.0.1:{host_port}", position == 0)
                    )
        urls: set[str] = set()
        for forward in forwards:
            host_port = self._forward_host_port(objects, forward, running)
            env.update(
                endpoint_env(forward.name, forward.port, f"127.0.0.1:{host_port}", forward.name not in urls)
            )
            urls.add(forward.name)
        with self._secrets_forgotten_on_failure():
            yield env

    def _service_host_port(
        self, service: ManifestObject, port: dict[str, Any], running: list[Container]
    ) -> int | None:
        # the pods a Service selects carry its name, or behind a forwarder its backend alias
        names = {service.name, backend_alias(service.name, service.namespace or "default")}
        members = [c for c in running if names & set(c.config.labels.get(LABEL_ALIASES, "").split(","))]
        return next(
            (
                found
                for c in members
                if (found := self._host_port(c, target_port(port, _named_ports(c)))) is not None
            ),
            None,
        )

    def _forward_host_port(
        self, objects: list[ManifestObject], forward: ResolvedForward, running: list[Container]
    ) -> int:
        if forward.kind == "Service":
            service = next(
                o
                for o in objects
                if o.kind == "Service"
                and o.name == forward.name
                and (o.namespace or "default") == forward.namespace
            )
            entry = next(
                (
                    p
                    for p in (service.doc.get("spec") or {}).get("ports") or []
                    if p.get("port") == forward.port
                ),
                {"port": forward.port},
            )
            found = self._service_host_port(service, entry, running)
        else:
            members = [
                c
                for c in running
                if c.config.labels.get(LABEL_WORKLOAD) == f"{forward.kind}/{forward.name}"
                and c.config.labels.get(LABEL_NAMESPACE, forward.namespace) == forward.namespace
            ]
            found = next((p for c in members if (p := self._host_port(c, forward.port)) is not None), None)
        if found is None:
            raise StagegateError(
                Code.E2E_FAILED,
                f"port_forward[{forward.index}]: no running container of {forward.resource} publishes "
                f"port {forward.port}",
                "the docker target publishes the ports a pod's containers declare (containerPort): "
                "declare it, and check that the workload runs (see the diagnostics)",
                {"resource": forward.resource, "port": forward.port},
            )
        return found

    def _host_port(self, container: Container, port: int | None) -> int | None:
        if port is None:
            return None
        ports = (container.network_settings.ports or {}).get(f"{port}/tcp") or []
        if not ports:
            return None
        entry = ports[0]
        return int(entry["HostPort"] if isinstance(entry, dict) else entry.host_port)

    # -- diagnostics and teardown --------------------------------------------------------------
    def collect_diagnostics(self, objects: list[ManifestObject], dest: Path) -> list[str]:
        """The evidence of a failed deploy or e2e run; the decoded Secrets are removed then."""
        self.forget_secrets()
        written: list[str] = []
        dest.mkdir(parents=True, exist_ok=True)
        plan = self.artifacts / "docker-plan.json"
        if plan.exists():
            shutil.copy(plan, dest / "docker-plan.json")
            written.append(str(dest / "docker-plan.json"))
        if self._pods:
            pods = [self.kubelet.pod_json(run) for run in self._pods]
            for name, items in (("pods.json", pods), ("events.json", self.events.to_json())):
                (dest / name).write_text(
                    redact(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}, indent=2))
                )
                written.append(str(dest / name))
        groups: dict[tuple[str, str], list[Container]] = {}
        for container in self._containers():
            labels = container.config.labels
            if LABEL_POD in labels:
                groups.setdefault((labels[LABEL_POD], labels.get(LABEL_CONTAINER, "")), []).append(container)
            elif LABEL_FORWARDER in labels:  # a Service's forwarder: "forwarder_<service>"
                groups[("forwarder", labels[LABEL_FORWARDER])] = [container]
        for (pod, name), found in groups.items():
            found.sort(key=lambda c: int(c.config.labels.get(LABEL_RESTARTS, "0")))
            base = dest / "containers" / f"{pod}_{name}"
            base.parent.mkdir(parents=True, exist_ok=True)
            for container, suffix in zip(reversed(found), ("", ".previous"), strict=False):
                try:
                    written += self._write_container(container, Path(f"{base}{suffix}"))
                except Exception as exc:  # diagnostics never fail the report they are for
                    with (dest / "problems.txt").open("a") as problems:
                        problems.write(redact(f"{container.name}: {type(exc).__name__}: {exc}\n"))
        return written

    def _write_container(self, container: Container, base: Path) -> list[str]:
        labels = container.config.labels
        document = (
            self.docker.container.inspect(container.id)
            ._get_inspect_result()
            .model_dump(mode="json", by_alias=True)
        )
        secret_names = set(filter(None, labels.get(LABEL_SECRET_ENV, "").split(",")))
        config = document.get("Config") or {}
        config["Env"] = [
            f"{entry.split('=', 1)[0]}=<redacted>" if entry.split("=", 1)[0] in secret_names else entry
            for entry in config.get("Env") or []
        ]
        inspect, log = Path(f"{base}.inspect.json"), Path(f"{base}.log")
        inspect.write_text(redact(json.dumps(document, indent=2)))
        log.write_text(redact(self.docker.container.logs(container, timestamps=True)))
        return [str(inspect), str(log)]

    def teardown(self, *, delete: bool) -> dict[str, Any]:
        try:
            had_network = self._our_network()
        except StagegateError:  # a foreign network of our name: left alone, ours removed
            had_network = False
        removed = self._remove_everything()
        what = f"{removed} container(s)" + (f" and network {self.network}" if had_network else "")
        return {"cluster": self.network, "deleted": what}

    def _owned(self) -> list[tuple[str, str]]:
        return [
            ("label", f"{LABEL_TARGET}=docker"),
            ("label", f"{LABEL_PROJECT}={self.project}"),
            ("label", f"{LABEL_OWNER}={self.owner}"),
        ]

    def _our_network(self) -> bool:
        """Whether our network exists; a network of its name that is not ours is a conflict."""
        if not self.docker.network.exists(self.network):
            return False
        found = self.docker.network.inspect(self.network)
        if (found.labels or {}).get(LABEL_OWNER) != self.owner:
            raise conflict("network", self.network, self.project)
        return True

    def _containers(self) -> list[Container]:
        return self.docker.container.list(all=True, filters=self._owned())

    def _remove_containers(self) -> int:
        containers = self._containers()
        if containers:
            self.docker.container.remove(containers, force=True, volumes=True)
        return len(containers)

    def _remove_volumes(self) -> None:
        volumes = self.docker.volume.list(filters=self._owned())
        if volumes:
            self.docker.volume.remove(volumes)

    def _remove_everything(self) -> int:
        removed = self._remove_containers()
        self._remove_volumes()
        images = self.docker.image.list(filters=self._owned())
        if images:
            self.docker.image.remove(images, force=True)
        shutil.rmtree(self.workdir, ignore_errors=True)  # the decoded Secrets with it
        if self._network_is_ours():
            try:
                self.docker.network.remove(self.network)
            except DockerException as exc:
                attached = self._foreign_attached()
                raise StagegateError(
                    Code.RESOURCE_CONFLICT,
                    f"network {self.network} was kept: containers stagegate did not create are attached "
                    f"to it ({', '.join(attached) or _tail(exc)})",
                    "disconnect them (`docker network disconnect`), then run teardown again; "
                    "stagegate removes only what it created",
                    {"network": self.network, "containers": attached},
                ) from None
        return removed

    def _network_is_ours(self) -> bool:
        try:
            return self._our_network()
        except StagegateError:
            return False

    def _foreign_attached(self) -> list[str]:
        try:
            found = self.docker.network.inspect(self.network)
        except DockerException:
            return []
        return sorted(getattr(c, "name", str(c)) for c in (found.containers or {}).values())

    def _empty_dir_image(self) -> str:
        """A tiny image holding one empty directory of mode 0777, imported (no registry needed)
        from a tar written into the artifacts dir; it seeds emptyDir volumes (see the kubelet)."""
        ref = f"stagegate-internal/empty-dir:{re.sub(r'[^A-Za-z0-9_.-]', '-', self.network)[:128]}"
        if self.docker.image.exists(ref):
            if (self.docker.image.inspect(ref).config.labels or {}).get(LABEL_OWNER) != self.owner:
                raise conflict("image", ref, self.project)
            return ref
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            entry = tarfile.TarInfo("empty-dir")
            entry.type, entry.mode = tarfile.DIRTYPE, 0o777
            tar.addfile(entry)
        path = self.workdir / "empty-dir.tar"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(buffer.getvalue())
        self.docker.import_(path, ref, changes=[f"LABEL {k}={v}" for k, v in self.labels.items()])
        return ref


def _tail(exc: DockerException) -> str:
    text = (getattr(exc, "stderr", "") or str(exc)).strip().splitlines()
    return text[-1] if text else type(exc).__name__


def _named_ports(container: Container) -> dict[str, int]:
    pairs = (
        entry.split("=", 1)
        for entry in container.config.labels.get(LABEL_PORTS, "").split(",")
        if "=" in entry
    )
    return {name: int(number) for name, number in pairs}


def _job_ref(plan: WorkloadPlan) -> ObjectRef:
    return ObjectRef("Job", plan.name, plan.namespace, plan.uid, "batch/v1")


def _new_uid() -> str:
    return str(uuid.uuid4())
