"""``$FAKE_K8S_STATE``: the tests' scenario.json (checked, so that a typo fails loudly), the
clusters' files, the lock, and the call log (``calls.jsonl``, with the pods each call served)."""

from __future__ import annotations

import fcntl
import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .formats import normalized_image
from .output import Failure

SCENARIO_KEYS = {"create_cluster_error", "apply_error", "load_failures", "port_forward", "logs", "workloads"}
SCENARIO_KEYS |= {"pullable", "replacements", "crds"}
SCENARIO_KEYS |= {"forbidden", "registries"}  # the existing target's (see forbidden_error, registry_serves)
STATE_KEYS = {"at", "phase", "scheduled", "message", "waiting", "ready", "restarts"}
STATE_KEYS |= {"last_exit_code", "last_reason", "container", "init"}
INIT_KEYS = {"waiting", "message", "restarts", "last_exit_code", "last_reason"}
PHASES = ("Pending", "Running", "Succeeded", "Failed")
WAITING_REASONS = (
    "ContainerCreating",
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "ErrImageNeverPull",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
    "CrashLoopBackOff",
)


# The pods this call made, with the timeline entry each one was in (its ``at``, seconds after its
# workload's apply or its replacement): calls.jsonl keeps them, so that a test can tell which poll
# of the program under test first saw a scripted state, without comparing clocks.
SERVED: dict[str, dict] = {}


def served(kind: str, name: str, pod: str, at: float) -> None:
    SERVED[pod] = {"workload": f"{kind}/{name}", "pod": pod, "at": round(at, 6)}


def read_json(path: Path, default: Any) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return default


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    tmp.replace(path)


class State:
    """``$FAKE_K8S_STATE``: scenario.json (the tests'), calls.jsonl, clusters/<name>/."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()  # bind-mounted into the node container: must be absolute
        self.root.mkdir(parents=True, exist_ok=True)

    @contextmanager
    def lock(self) -> Iterator[None]:
        with open(self.root / ".lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield

    def log_call(self, record: dict) -> None:
        line = (json.dumps(record) + "\n").encode()
        fd = os.open(self.root / "calls.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)

    def scenario(self) -> dict:
        path = self.root / "scenario.json"
        try:
            scenario = read_json(path, {})
        except json.JSONDecodeError as exc:
            raise Failure(f"fake: {path}: {exc}") from None
        unknown = set(scenario) - SCENARIO_KEYS
        if unknown:
            raise Failure(f"fake: {path}: unknown keys {sorted(unknown)} (known: {sorted(SCENARIO_KEYS)})")
        for section in ("workloads", "replacements"):
            for key, timeline in (scenario.get(section) or {}).items():
                for entry in timeline:
                    check_state(f"{path}: {section}[{key!r}]", entry)
        pullable = scenario.get("pullable", [])
        if not isinstance(pullable, list) or not all(
            isinstance(ref, str) and re.fullmatch(r"[^\s@]+(@sha256:[0-9a-f]{64})?", ref) for ref in pullable
        ):
            raise Failure(
                f"fake: {path}: pullable must be a list of image references or repositories "
                f'(e.g. ["busybox:1.36", "ghcr.io/org/tool"]), not {pullable!r}'
            )
        return scenario

    def cluster_dir(self, name: str) -> Path:
        return self.root / "clusters" / name

    def cluster(self, name: str) -> dict | None:
        return self.with_node_images(read_json(self.cluster_dir(name) / "cluster.json", None))

    def clusters(self) -> list[dict]:
        base = self.root / "clusters"
        found = [read_json(p / "cluster.json", None) for p in sorted(base.iterdir())] if base.is_dir() else []
        return [self.with_node_images(c) for c in found if c]

    def with_node_images(self, cluster: dict | None) -> dict | None:
        """The cluster, plus (not stored) the containerd names of the images `kind load` put on its node."""
        if cluster:
            loaded = read_json(self.cluster_dir(cluster["name"]) / "node" / "images.json", {})
            cluster["node_images"] = sorted({normalized_image(r) for i in loaded.values() for r in i["refs"]})
        return cluster

    def save_cluster(self, cluster: dict) -> None:
        stored = {k: v for k, v in cluster.items() if k != "node_images"}
        write_json(self.cluster_dir(cluster["name"]) / "cluster.json", stored)

    def api(self, name: str) -> dict:
        return read_json(self.cluster_dir(name) / "api.json", {"objects": {}, "events": [], "rv": 1000})

    def save_api(self, name: str, api: dict) -> None:
        write_json(self.cluster_dir(name) / "api.json", api)


def check_state(where: str, entry: dict) -> None:
    """A timeline entry of the scenario, validated so that a typo fails loudly."""
    unknown = set(entry) - STATE_KEYS
    if unknown:
        raise Failure(f"fake: {where}: unknown state keys {sorted(unknown)} (known: {sorted(STATE_KEYS)})")
    if entry.get("phase", "Running") not in PHASES:
        raise Failure(f"fake: {where}: phase {entry['phase']!r} is not one of {PHASES}")
    for fields in (entry, entry.get("init") or {}):
        if fields.get("waiting") not in (None, *WAITING_REASONS):
            raise Failure(f"fake: {where}: waiting {fields['waiting']!r} is not one of {WAITING_REASONS}")
    if set(entry.get("init") or {}) - INIT_KEYS:
        raise Failure(f"fake: {where}: init takes only {sorted(INIT_KEYS)}")
