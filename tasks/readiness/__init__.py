"""Deploy readiness: is the deploy ready, and can it still become ready?

- :mod:`.model` — the policy, a poll's snapshot, verdicts, readers of API JSON.
- :mod:`.rules` — when a workload is ready: one function per kind (Deployment, StatefulSet,
  DaemonSet, ReplicaSet, Job, Pod, custom resources), generic rules first — as kstatus.
- :mod:`.podstate` — container states: detection (pull errors, crashes, config errors,
  unschedulable, failing probes) apart from the errors that explain them.
- :mod:`.waiter` — the policy over time (crash convergence, grace periods) and the loop.
- ``python -m stagegate.readiness [--elapsed S] FILE...`` — explain a verdict from kubectl JSON.

Pure functions over the Kubernetes API's JSON: no CLI, no clock of their own. Decisions use
reasons and conditions, never message text.
"""

from .model import (
    HEARTBEAT_S,
    RESTART_BUDGET_ANNOTATION,
    Assessment,
    ImageFacts,
    ReadinessPolicy,
    Snapshot,
    Watch,
    WorkloadStatus,
)
from .rules import workload_status
from .waiter import ReadinessWaiter, Tracker, timeout_error

__all__ = [
    "HEARTBEAT_S",
    "RESTART_BUDGET_ANNOTATION",
    "Assessment",
    "ImageFacts",
    "ReadinessPolicy",
    "ReadinessWaiter",
    "Snapshot",
    "Tracker",
    "Watch",
    "WorkloadStatus",
    "timeout_error",
    "workload_status",
]
