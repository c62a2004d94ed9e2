"""The policy over time: is the deploy ready, can it still become ready, and the waiting loop.

:class:`Tracker` judges one snapshot after another and remembers what the verdict needs from
earlier polls: since when a pod is unschedulable, when the rest of the deploy became ready
around a crash-looping container, and how many restarts it had then.

The crash policy ("broken or still converging?"): a crash-looping container is *converging*
while another workload of the same deploy is still coming up (a service that crashes until
its database answers) and its restart budget lasts. It is fatal
- at once when waiting cannot help: its command cannot run (exit 126/127, ``StartError``),
  or it was ``OOMKilled`` twice;
- when its budget (``crashloop_restarts``, or the ``stagegate.dev/restart-budget``
  annotation) is spent;
- when everything it could be waiting for is ready and it crashes again — a run that began
  after the rest of the deploy was ready ended in a crash. Where the target allows it, the
  waiter restarts such a pod at once instead of waiting out the kubelet's back-off, so this
  verdict (or the pod's recovery) comes within a poll or two.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..clock import Clock
from ..errors import Code, StagegateError
from . import podstate
from .model import (
    STABLE_POLLS,
    Assessment,
    ImageFacts,
    ReadinessPolicy,
    Snapshot,
    WorkloadStatus,
    count,
    name_of,
    namespace_of,
    pod_ready,
    selects,
    status_of,
    terminating,
    workload_id,
)
from .rules import workload_status

Key = tuple[str, str, str]  # namespace, pod, container


@dataclass
class Tracker:
    """Judges snapshots in order; ``held_for`` judges one snapshot as if its state had held
    that many seconds (the explain command)."""

    policy: ReadinessPolicy
    images: ImageFacts
    held_for: float | None = None
    _unschedulable_since: dict[tuple[str, str], float] = field(default_factory=dict)
    # workloads whose every other workload is ready ("settled"), with their containers'
    # restart counts at that moment: a crash beyond them began after the rest was ready
    _restarts_at_settle: dict[str, dict[Key, int]] = field(default_factory=dict)
    _ooms: dict[Key, set[tuple[Any, ...]]] = field(default_factory=dict)
    _restarted: set[tuple[str, str]] = field(default_factory=set)

    def assess(self, snapshot: Snapshot, elapsed: float, wall: datetime | None = None) -> Assessment:
        workloads = {workload_id(w): w for w in snapshot.workloads}
        pods_of = {
            wid: [p for p in snapshot.pods if selects(w, p) and not terminating(p)]
            for wid, w in workloads.items()
        }
        statuses = {wid: workload_status(w, pods_of[wid]) for wid, w in workloads.items()}
        newly_settled = self._settle(statuses, pods_of)
        restart: list[tuple[str, str]] = []
        unschedulable: list[str] = []
        stuck_on: set[str] = set()
        for wid, workload in workloads.items():
            problem = self._pods_verdict(
                wid,
                workload,
                pods_of[wid],
                snapshot,
                elapsed,
                wall,
                newly_settled,
                restart,
                unschedulable,
                stuck_on,
            )
            if problem is not None and (problem.verdict == "fatal" or statuses[wid].verdict == "ready"):
                statuses[wid] = problem
            elif problem is not None:
                statuses[wid] = WorkloadStatus("waiting", f"{statuses[wid].message}; {problem.message}")
        fatal = next((s.error for s in statuses.values() if s.verdict == "fatal"), None)
        not_ready = [
            f"{wid}: {status.message}" + _pods_detail(pods_of[wid], snapshot.events)
            for wid, status in statuses.items()
            if status.verdict == "waiting"
        ]
        if any(
            podstate.probe_failures(p, snapshot.events)
            for wid, status in statuses.items()
            if status.verdict == "waiting"
            for p in pods_of[wid]
            if not pod_ready(p)
        ):
            stuck_on.add("probe")
        return Assessment(
            fatal is None and not not_ready,
            not_ready,
            fatal,
            unschedulable,
            statuses,
            restart=restart,
            stuck_on=frozenset(stuck_on),
        )

    # -- settling: is everything else ready around a workload? ------------------------------
    def _settle(
        self, statuses: dict[str, WorkloadStatus], pods_of: dict[str, list[dict[str, Any]]]
    ) -> set[str]:
        newly = set()
        for wid in statuses:
            others_ready = all(s.verdict == "ready" for other, s in statuses.items() if other != wid)
            if not others_ready:
                self._restarts_at_settle.pop(wid, None)
                self._restarted = {
                    r for r in self._restarted if r[1] not in {name_of(p) for p in pods_of[wid]}
                }
                continue
            if wid not in self._restarts_at_settle:
                newly.add(wid)
                self._restarts_at_settle[wid] = {
                    (namespace_of(p), _identity(p), str(c.get("name"))): int(c.get("restartCount") or 0)
                    for p in pods_of[wid]
                    for c in _statuses(p)
                }
        return newly if self.held_for is None else set()

    # -- container states -------------------------------------------------------------------
    def _pods_verdict(
        self,
        wid: str,
        workload: dict[str, Any],
        pods: list[dict[str, Any]],
        snapshot: Snapshot,
        elapsed: float,
        wall: datetime | None,
        newly_settled: set[str],
        restart: list[tuple[str, str]],
        unschedulable: list[str],
        stuck_on: set[str],
    ) -> WorkloadStatus | None:
        seen_unschedulable = set()
        waiting_on: list[str] = []
        for pod in pods:
            for issue in podstate.container_issues(pod, str(workload.get("kind")), snapshot.config):
                if issue.problem == "pull":
                    return _fatal_from(podstate.pull_error(issue, wid, self.images))
                if issue.problem == "run":
                    return _fatal_from(podstate.run_error(issue, wid))
                if issue.problem == "failed":
                    return _fatal_from(podstate.failed_error(issue, wid))
                if issue.problem == "config":
                    if issue.missing:
                        return _fatal_from(podstate.config_error(issue, wid))
                    waiting_on.append(f"{issue.container} {issue.reason}")
                elif issue.problem == "unschedulable":
                    key = (issue.namespace, issue.pod)
                    seen_unschedulable.add(key)
                    unschedulable.append(issue.pod)
                    since = self._unschedulable_since.setdefault(
                        key, elapsed - self.held_for if self.held_for is not None else elapsed
                    )
                    held = podstate.unschedulable_for(pod, elapsed - since, wall)
                    if held >= self.policy.unschedulable_grace:
                        error = podstate.unschedulable_error(issue, wid, self.policy.unschedulable_grace)
                        error.subject["unschedulable_for_s"] = round(held, 3)
                        return _fatal_from(error)
                elif issue.problem == "crash":
                    verdict = self._crash_verdict(wid, workload, pod, issue, newly_settled, restart)
                    if verdict is not None:
                        return _fatal_from(verdict)
                    waiting_on.append(f"{issue.container} crash-looping ({issue.restarts} restart(s))")
                    stuck_on.add("crash")
        for key in [k for k in self._unschedulable_since if k[0] == namespace_of(workload)]:
            if key not in seen_unschedulable and key[1] in {name_of(p) for p in pods}:
                del self._unschedulable_since[key]
        if waiting_on:
            return WorkloadStatus("waiting", ", ".join(waiting_on))
        return None

    def _crash_verdict(
        self,
        wid: str,
        workload: dict[str, Any],
        pod: dict[str, Any],
        issue: podstate.ContainerIssue,
        newly_settled: set[str],
        restart: list[tuple[str, str]],
    ) -> StagegateError | None:
        budget = podstate.restart_budget(pod, workload, self.policy.crashloop_restarts)
        if issue.exit_code in podstate.CANNOT_RUN_EXIT_CODES or issue.reason in podstate.CANNOT_RUN_REASONS:
            return podstate.crash_error(issue, wid, "its command cannot run, so waiting cannot help")
        if issue.reason == "OOMKilled":
            ooms = self._ooms.setdefault(issue.key, set())
            ooms.add((issue.pod, issue.restarts))
            if len(ooms) >= 2:
                return podstate.crash_error(issue, wid, "OOMKilled twice with the same memory limit")
        if issue.restarts > budget:
            return podstate.crash_error(issue, wid, f"its restart budget of {budget} is spent")
        if wid not in self._restarts_at_settle:
            return None  # something it may be waiting for is still coming up: converging
        if self.held_for is not None:
            if self.held_for > 0:
                return podstate.crash_error(
                    issue, wid, f"everything else is ready and it still crashed after {self.held_for:g} s"
                )
            return None
        key = (issue.namespace, _identity(pod), issue.container)
        baseline = self._restarts_at_settle[wid].get(key)
        crashed_again = wid not in newly_settled and (baseline is None or issue.restarts > baseline)
        if crashed_again:
            return podstate.crash_error(
                issue, wid, "it crashed again after everything it could be waiting for was ready"
            )
        target = (issue.namespace, issue.pod)
        if target not in self._restarted:
            self._restarted.add(target)
            restart.append(target)
        return None


class ReadinessWaiter:
    """Polls until the rollout is ready (stable over :data:`STABLE_POLLS` polls), fatal, or late."""

    def __init__(self, policy: ReadinessPolicy, clock: Clock, images: ImageFacts) -> None:
        self.policy = policy
        self.clock = clock
        self.images = images

    def wait(
        self,
        poll: Callable[[], Snapshot],
        on_progress: Callable[[Assessment, float], None] = lambda a, t: None,
        restart: Callable[[str, str], bool] | None = None,
    ) -> dict[str, Any]:
        """Returns timing facts; raises the fatal error or ``READINESS_TIMEOUT``.

        ``restart(namespace, pod)``, when the target offers it, restarts a crash-looping pod's
        containers at once (skipping the kubelet's back-off); True when it did."""
        tracker = Tracker(self.policy, self.images)
        started = self.clock.monotonic()
        ready_in_a_row = 0
        polls = 0
        previous: float | None = None  # when the poll before this one was judged
        restarted: list[str] = []
        while True:
            snapshot = poll()
            polls += 1
            elapsed = self.clock.monotonic() - started
            result = tracker.assess(snapshot, elapsed, self.clock.now())
            if result.fatal is not None:
                # when it was seen, on which poll, and when the poll before looked: evidence that
                # the verdict came on the first poll that could give it
                result.fatal.subject["detected_after_s"] = round(elapsed, 3)
                result.fatal.subject["polls"] = polls
                if previous is not None:
                    result.fatal.subject["previous_poll_after_s"] = round(previous, 3)
                raise result.fatal
            previous = elapsed
            done = []
            for namespace, pod in result.restart:
                if restart is not None and restart(namespace, pod):
                    done.append(
                        f"restarted pod {pod} at once (skipping the back-off): everything it may "
                        "wait on is ready"
                    )
                    restarted.append(pod)
            result.notes = done
            on_progress(result, elapsed)
            ready_in_a_row = ready_in_a_row + 1 if result.ready else 0
            if ready_in_a_row >= STABLE_POLLS:
                return {
                    "ready_after_s": round(elapsed, 3),
                    "polls": polls,
                    "restarted": restarted,
                    "jobs": job_attempts(snapshot),
                }
            if elapsed >= self.policy.timeout:
                raise timeout_error(result, self.policy)
            self.clock.sleep(min(self.policy.poll_interval, max(0.0, self.policy.timeout - elapsed)))


def job_attempts(snapshot: Snapshot) -> dict[str, dict[str, int]]:
    """Each Job's ``succeeded`` and ``failed`` pod counts (from its status) when the deploy was
    ready: a migration Job that failed until its database answered shows ``failed`` > 0."""
    return {
        workload_id(w): {key: count(status_of(w), key) for key in ("succeeded", "failed")}
        for w in snapshot.workloads
        if w.get("kind") == "Job"
    }


def timeout_error(result: Assessment, policy: ReadinessPolicy) -> StagegateError:
    not_ready = result.not_ready
    text = "; ".join(not_ready)
    if "probe" in result.stuck_on:
        hint = "a probe keeps failing: check its port and path against what the container serves"
    elif "crash" in result.stuck_on:
        hint = "a container keeps crashing while something it needs never came up: read its log"
    else:
        hint = "the pods are slow but not failing: read the diagnostics, or raise [tool.stagegate.deploy] timeout"
    return StagegateError(
        Code.READINESS_TIMEOUT,
        f"not ready after {policy.timeout:g} s: {text}",
        hint,
        {"not_ready": not_ready, "timeout_s": policy.timeout},
    )


def _fatal_from(error: StagegateError) -> WorkloadStatus:
    return WorkloadStatus("fatal", error.message, error)


def _pods_detail(pods: list[dict[str, Any]], events: list[dict[str, Any]]) -> str:
    details = [d for p in pods if (d := podstate.pod_detail(p, events))]
    return f" — {'; '.join(details)}" if details else ""


def _identity(pod: dict[str, Any]) -> str:
    """A pod's identity: its uid (a StatefulSet's replacement pod keeps the name), else name."""
    return str((pod.get("metadata") or {}).get("uid") or name_of(pod))


def _statuses(pod: dict[str, Any]) -> list[dict[str, Any]]:
    status = pod.get("status") or {}
    return list(status.get("initContainerStatuses") or []) + list(status.get("containerStatuses") or [])
