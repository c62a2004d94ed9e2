"""A small kubelet on the Docker engine: start a pod's containers, probe them, restart them.

Each call of :meth:`Kubelet.sync` does what the kubelet's sync loop does for one pod: the init
containers one after the other, then the containers; probes when due (startup gates
readiness and liveness; liveness and startup failures restart the container); exited
containers restarted per ``restartPolicy`` (Always: any exit, OnFailure: non-zero, Never:
none) with the kubelet's crash back-off. Every restart is a new Docker container, as every
kubelet restart is a new CRI container: new ``containerID``, and the previous one kept for its
logs (``kubectl logs --previous``). :meth:`Kubelet.pod_json` reports the pod in the API's shape.

The kubelet only runs while someone syncs: the docker target syncs at every readiness poll.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from python_on_whales import Container, DockerClient
from python_on_whales.exceptions import DockerException

from ...clock import Clock, iso
from ...retry import retry_transient
from .events import EventRecorder
from .labels import (
    LABEL_ALIASES,
    LABEL_CONTAINER,
    LABEL_INIT,
    LABEL_NAMESPACE,
    LABEL_OWNER,
    LABEL_POD,
    LABEL_POD_UID,
    LABEL_PORTS,
    LABEL_PROJECT,
    LABEL_RESTARTS,
    LABEL_SECRET_ENV,
    LABEL_WORKLOAD,
    conflict,
)
from .plans import PodPlan, probe_action
from .pods import ContainerRun, PodRun, ProbeState, pod_json
from .probes import PROBE_NAMES, ProbeResult, run_probe, setting
from .status import Backoff, go_duration

LOG = logging.getLogger(__name__)

STOP_GRACE_CAP = 5.0  # the docker target stops synchronously: a long grace would stall every pod


@dataclass
class Kubelet:
    docker: DockerClient
    clock: Clock
    network: str
    labels: dict[str, str]  # the owner labels every created object carries
    events: EventRecorder
    backoff: Backoff
    empty_dir_image: Callable[[], str]  # the image whose 0777 directory seeds emptyDir volumes
    _image_ids: dict[str, str] = field(default_factory=dict)
    _routable: bool | None = None

    # -- lifecycle -----------------------------------------------------------------------------
    def create(self, plan: PodPlan, uid: str) -> PodRun:
        pod = PodRun(
            plan,
            uid,
            self.clock.now(),
            [ContainerRun(c) for c in plan.init],
            [ContainerRun(c) for c in plan.containers],
        )
        self.events.record(
            pod.ref,
            "Scheduled",
            f"Successfully assigned {plan.namespace}/{plan.name} to docker",
            component="default-scheduler",
        )
        return pod

    def sync(self, pod: PodRun) -> None:
        """One pass of the kubelet's sync loop over ``pod``."""
        if pod.killed:
            for run in pod.init + pod.containers:
                self._observe(pod, run)
            return
        for run in pod.init:
            if self._sync_container(pod, run) != "done" or run.terminated["exitCode"] != 0:  # type: ignore[index]
                return  # the next init container waits for this one
        for run in pod.containers:
            if self._sync_container(pod, run) == "running":
                self._probe(pod, run)

    def restart_now(self, pod: PodRun) -> bool:
        """Restart the containers waiting out a crash back-off now, and reset their back-off."""
        restarted = False
        for run in pod.init + pod.containers:
            if run.waiting is not None and run.waiting[0] == "CrashLoopBackOff" and not pod.killed:
                self.backoff.reset(self._key(pod, run), self.clock.now())
                self._restart(pod, run)
                restarted = True
        return restarted

    def kill(self, pod: PodRun, message: str) -> None:
        """Stop what runs of ``pod`` for good (its Job finished)."""
        pod.killed = True
        for run in pod.init + pod.containers:
            if run.running and run.current is not None:
                self.events.record(pod.ref.container(run.plan.name, run.plan.init), "Killing", message)
                self._stop(pod, run.current)
            if run.waiting is not None and run.waiting[0] == "CrashLoopBackOff":
                run.terminated, run.waiting = run.last_terminated, None
            self._observe(pod, run)

    # -- containers ----------------------------------------------------------------------------
    def _sync_container(self, pod: PodRun, run: ContainerRun) -> str:
        """Start, observe or restart one container: running | waiting | done."""
        if run.terminated is not None:
            return "done"
        if run.current is None and (run.waiting is None or run.waiting[0] == "ContainerCreating"):
            self._start(pod, run)
        if run.current is None:
            return "waiting"
        if self._observe(pod, run):
            return "running"
        if run.terminated is not None:
            return "done"
        key = self._key(pod, run)
        finished = run.last_terminated["_finished"]  # type: ignore[index]
        if self.backoff.in_backoff_since(key, finished, self.clock.now()):
            if run.waiting is None:
                message = (
                    f"back-off {go_duration(self.backoff.get(key))} restarting failed "
                    f"container={run.plan.name} pod={pod.key}"
                )
                run.waiting = ("CrashLoopBackOff", message)
                self.events.record(
                    pod.ref.container(run.plan.name, run.plan.init),
                    "BackOff",
                    f"Back-off restarting failed container {run.plan.name} in pod {pod.key}",
                    warning=True,
                )
            return "waiting"
        self.backoff.next(key, finished, self.clock.now())
        self._restart(pod, run)
        return "running" if run.running else "waiting"

    def _observe(self, pod: PodRun, run: ContainerRun) -> bool:
        """Inspect the current container; handle its exit once. True while it runs."""
        if run.current is None:
            return False
        container = retry_transient(
            lambda: self.docker.container.inspect(run.current.id), sleep=self.clock.sleep
        )
        state = container.state
        run.running = bool(state.running)
        if run.running:
            run.started_iso = _rfc3339(state.started_at) or iso(self.clock.now())
            if not run.ip:
                networks = container.network_settings.networks or {}
                run.ip = getattr(networks.get(self.network), "ip_address", "") or ""
            if pod.containers and pod.containers[0] is run:
                pod.ip = run.ip  # each container has an address of its own here: the first one's
            return True
        if run.handled == container.id:
            return False
        run.handled = container.id
        run.probes.clear()
        exit_code = int(state.exit_code or 0)
        reason = "OOMKilled" if state.oom_killed else ("Completed" if exit_code == 0 else "Error")
        if state.error:  # it never started (the command is not in the image, ...)
            reason, exit_code = "StartError", exit_code or 128
        finished = _rfc3339(state.finished_at)
        ending = {
            "exitCode": exit_code,
            "reason": reason,
            "message": state.error or None,
            "startedAt": _rfc3339(state.started_at) or finished,
            "finishedAt": finished or iso(self.clock.now()),
            "containerID": f"docker://{container.id}",
            "_finished": state.finished_at if finished else self.clock.now(),
        }
        policy = pod.plan.restart_policy
        again = not pod.killed and (
            (exit_code != 0 and policy != "Never") if run.plan.init else _restarts(policy, exit_code)
        )
        if again:
            run.last_terminated = ending
        else:
            run.terminated = ending
            run.waiting = None
        return False

    def _start(self, pod: PodRun, run: ContainerRun) -> None:
        plan = run.plan
        ref = pod.ref.container(plan.name, plan.init)
        if plan.config_error is not None:
            run.waiting = ("CreateContainerConfigError", plan.config_error)
            self.events.record(ref, "Failed", f"Error: {plan.config_error}", warning=True)
            return
        image_id = self._image_id(plan.image)
        if not image_id:
            message = f"image {plan.image} is not in the Docker engine and could not be pulled"
            run.waiting = ("ErrImagePull", message)
            self.events.record(ref, "Failed", f'Failed to pull image "{plan.image}": {message}', warning=True)
            return
        run.image_id = image_id
        self.events.record(ref, "Pulled", f'Container image "{plan.image}" already present on machine')
        labels = {
            **self.labels,
            LABEL_POD: plan.pod,
            LABEL_POD_UID: pod.uid,
            LABEL_NAMESPACE: plan.namespace,
            LABEL_WORKLOAD: plan.workload,
            LABEL_CONTAINER: plan.name,
            LABEL_INIT: str(plan.init).lower(),
            LABEL_ALIASES: ",".join(plan.aliases),
            LABEL_PORTS: ",".join(f"{k}={v}" for k, v in plan.named_ports.items()),
            LABEL_RESTARTS: str(run.restart_count),
            LABEL_SECRET_ENV: ",".join(sorted(plan.secret_env)),
        }
        name = f"sg-{self.network.removeprefix('stagegate-')}-{plan.pod}-{plan.name}-{run.restart_count}"[
            :120
        ]
        try:
            run.current = self.docker.container.create(
                plan.image,
                plan.command,
                name=name,
                entrypoint=plan.entrypoint,
                envs=plan.env,
                workdir=plan.workdir,
                networks=[self.network],
                network_aliases=plan.aliases,
                publish=[("127.0.0.1:", port) for port in plan.published],
                volumes=[
                    *plan.mounts,
                    *((self._empty_dir(pod, name), path, "rw,nocopy") for name, path in plan.volumes),
                ],
                labels=labels,
                pull="never",
            )
        except DockerException as exc:
            self._refuse_foreign("container", name)
            run.waiting = ("CreateContainerError", _tail(exc))
            self.events.record(ref, "Failed", f"Error: {_tail(exc)}", warning=True)
            return
        self.events.record(ref, "Created", f"Created container: {plan.name}")
        try:
            self.docker.container.start(run.current)
        except DockerException as exc:  # e.g. the command is not in the image: exits 127 at once
            self.events.record(ref, "Failed", f"Error: {_tail(exc)}", warning=True)
        else:
            self.events.record(ref, "Started", f"Started container {plan.name}")
        pod.start_time = pod.start_time or self.clock.now()
        run.waiting, run.running, run.started_at = None, True, self.clock.monotonic()

    def _restart(self, pod: PodRun, run: ContainerRun) -> None:
        if run.previous is not None:  # like the kubelet's container GC: one dead container kept
            try:
                self.docker.container.remove(run.previous, force=True)
            except DockerException as exc:
                LOG.debug("could not remove %s: %s", run.previous.id, exc)
        run.previous, run.current, run.waiting, run.ip = run.current, None, None, ""
        run.restart_count += 1
        self._start(pod, run)

    def _stop(self, pod: PodRun, container: Container) -> None:
        grace = int(min(pod.plan.termination_grace, STOP_GRACE_CAP))
        try:
            if grace < 1:  # `docker stop --time 0` would be dropped as "no value": kill at once
                self.docker.container.kill(container)
            else:
                self.docker.container.stop(container, time=grace)
        except DockerException as exc:
            LOG.debug("could not stop %s: %s", container.id, exc)

    # -- probes --------------------------------------------------------------------------------
    def _probe(self, pod: PodRun, run: ContainerRun) -> None:
        """Run the probes that are due. Startup gates the others; failing startup or liveness
        probes restart the container."""
        kinds = ["startupProbe"] if not run.started else ["readinessProbe", "livenessProbe"]
        for kind in kinds:
            probe = run.plan.probe(kind)
            if probe is None:
                continue
            state = run.probes.setdefault(kind, ProbeState())
            now = self.clock.monotonic()
            if now - run.started_at < setting(probe, "initialDelaySeconds"):
                continue
            if state.last_run is not None and now - state.last_run < setting(probe, "periodSeconds"):
                continue
            state.last_run = now
            result = self._probe_once(pod, run, probe)
            if result.ok:
                state.successes, state.failures = state.successes + 1, 0
                if state.successes >= int(setting(probe, "successThreshold")) or kind != "readinessProbe":
                    state.passed = True
                continue
            state.failures, state.successes = state.failures + 1, 0
            ref = pod.ref.container(run.plan.name)
            self.events.record(
                ref, "Unhealthy", f"{PROBE_NAMES[kind]} probe failed: {result.message}", warning=True
            )
            if state.failures >= int(setting(probe, "failureThreshold")):
                state.passed = False
                if kind != "readinessProbe" and run.current is not None:
                    what = "liveness" if kind == "livenessProbe" else "startup"
                    self.events.record(
                        ref, "Killing", f"Container {run.plan.name} failed {what} probe, will be restarted"
                    )
                    self._stop(pod, run.current)
                    self._observe(pod, run)
                    return

    def _probe_once(self, pod: PodRun, run: ContainerRun, probe: dict[str, Any]) -> ProbeResult:
        assert run.current is not None
        container = run.current
        action = probe_action(probe) or {}
        port = action.get("port")
        if action and port is None and run.plan.ports:
            port = run.plan.ports[0]

        def execute(command: list[str]) -> tuple[bool, str]:
            try:
                return True, str(self.docker.execute(container, command) or "")
            except DockerException as exc:
                return False, (exc.stdout or "") + (exc.stderr or "")

        address = self._address(run.ip, container, int(port)) if port is not None else None
        return run_probe(probe, address, execute)

    def _address(self, ip: str, container: Container, port: int) -> tuple[str, int] | None:
        """Where to probe ``port``: the pod IP as the kubelet does, when this machine routes to
        the target's network; else the port published on 127.0.0.1."""
        if self._routable is None:
            self._routable = self._network_is_local()
        if self._routable and ip:
            return ip, port
        found = (self.docker.container.inspect(container.id).network_settings.ports or {}).get(f"{port}/tcp")
        if not found:
            return None
        entry = found[0]
        return "127.0.0.1", int(entry["HostPort"] if isinstance(entry, dict) else entry.host_port)

    def _network_is_local(self) -> bool:
        """The network's gateway is an address of this machine: the engine runs here."""
        try:
            gateway = self.docker.network.inspect(self.network).ipam.config[0]["Gateway"]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
                probe.bind((gateway, 0))
            return True
        except (DockerException, OSError, LookupError, TypeError):
            return False

    # -- volumes and images --------------------------------------------------------------------
    def _empty_dir(self, pod: PodRun, name: str) -> str:
        """The Docker volume behind an emptyDir, shared by the pod's containers and kept across
        their restarts, like the kubelet's. Its root is mode 0777 as the kubelet makes it, so
        that a container of any user may write: a never-started container of a tiny image whose
        only content is a 0777 directory seeds the new volume (Docker copies the mount point's
        mode into an empty volume), and the pod's containers mount it ``nocopy`` so that their
        image's directory neither shows through nor changes that mode."""
        volume = f"{self.network}-{pod.uid[:13]}-{name}"
        self._refuse_foreign("volume", volume)
        if not self.docker.volume.exists(volume):
            self.docker.volume.create(volume, labels={**self.labels, LABEL_POD: pod.plan.name})
            seed = self.docker.container.create(
                self.empty_dir_image(), ["/none"], volumes=[(volume, "/empty-dir")], labels=self.labels
            )
            self.docker.container.remove(seed)
        return volume

    def _refuse_foreign(self, kind: str, name: str) -> None:
        """A container or volume of the name ours would get that is not ours: a conflict."""
        component = self.docker.container if kind == "container" else self.docker.volume
        try:
            found = component.inspect(name)
        except DockerException:
            return  # there is none
        labels = (found.config.labels if kind == "container" else found.labels) or {}
        if labels.get(LABEL_OWNER) != self.labels.get(LABEL_OWNER):
            raise conflict(kind, name, self.labels.get(LABEL_PROJECT, ""))

    def _image_id(self, image: str) -> str:
        """``imageID`` of a container status. Kubelets over containerd show the repository digest
        (``docker.io/library/busybox@sha256:…``); the dockershim showed ``docker-pullable://`` plus
        the repository digest for pulled images and ``docker://sha256:…`` (the image ID) for images
        without one. The docker target is a dockershim in spirit, and built images have no digest:
        it shows what the dockershim showed."""
        if image not in self._image_ids:
            try:
                if not self.docker.image.exists(image):
                    retry_transient(lambda: self.docker.image.pull(image, quiet=True), sleep=self.clock.sleep)
                found = self.docker.image.inspect(image)
                digests = list(found.repo_digests or [])
                self._image_ids[image] = (
                    f"docker-pullable://{digests[0]}" if digests else f"docker://{found.id}"
                )
            except DockerException:
                return ""
        return self._image_ids[image]

    def _key(self, pod: PodRun, run: ContainerRun) -> str:
        return f"{pod.uid}/{run.plan.name}"

    def pod_json(self, pod: PodRun) -> dict[str, Any]:
        """The pod as the API shows it."""
        return pod_json(pod, self.clock.now())


def _restarts(policy: str, exit_code: int) -> bool:
    return policy == "Always" or (policy == "OnFailure" and exit_code != 0)


def _rfc3339(moment: datetime | None) -> str:
    """The engine's time in RFC 3339; Docker's zero time (never started) is empty."""
    return iso(moment) if moment is not None and moment.year > 1 else ""


def _tail(exc: DockerException) -> str:
    text = (getattr(exc, "stderr", "") or str(exc)).strip().splitlines()
    return text[-1] if text else type(exc).__name__
