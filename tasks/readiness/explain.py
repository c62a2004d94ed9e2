"""Explain readiness verdicts for kubectl JSON dumps — for people debugging a CI failure from
the diagnostics, and for tools comparing verdicts.

    python -m stagegate.readiness [--elapsed S] FILE...

Each FILE is one snapshot: ``kubectl get deploy,sts,ds,job,pod,events -o json`` output (a
``List``), or a single object. A workload's pods are the Pods of the same file that it
selects; events and ConfigMaps/Secrets of the file are read too. One JSON line per workload
(objects of the file that no other object of it owns):
``{"file", "workload", "namespace", "verdict", "code", "message"}``. ``--elapsed S`` judges
the snapshot as if its state had held for S seconds (grace periods have run). Exit 0 when
every workload is ready, 1 when not, 2 on unreadable input.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from .. import kinds
from .model import (
    ImageFacts,
    ReadinessPolicy,
    Snapshot,
    condition,
    name_of,
    namespace_of,
    owned_by_any,
    workload_id,
)
from .waiter import Tracker


def objects_of(document: Any) -> list[dict[str, Any]]:
    """The objects of a kubectl JSON document: a List's items (nested Lists unpacked), or it."""
    if isinstance(document, dict) and isinstance(document.get("items"), list):
        return [o for item in document["items"] for o in objects_of(item)]
    return [document] if isinstance(document, dict) else []


def snapshot_of(objects: Iterable[dict[str, Any]]) -> tuple[Snapshot, list[dict[str, Any]]]:
    """The snapshot of one file and its top-level workloads, in file order."""
    objects = list(objects)
    candidates = [
        o
        for o in objects
        if o.get("kind") in kinds.WATCHED
        or (
            o.get("kind") not in kinds.WITHOUT_READINESS
            and (condition(o, "Ready") or condition(o, "Stalled"))
        )
    ]
    workloads = [o for o in candidates if not owned_by_any(o, candidates)]
    config: dict[tuple[str, str, str], frozenset[str]] = {}
    for obj in objects:
        if obj.get("kind") in ("ConfigMap", "Secret"):
            keys = {*(obj.get("data") or {}), *(obj.get("stringData") or {}), *(obj.get("binaryData") or {})}
            config[(str(obj["kind"]), namespace_of(obj), name_of(obj))] = frozenset(keys)
    snapshot = Snapshot(
        workloads=workloads,
        pods=[o for o in objects if o.get("kind") == "Pod"],
        events=[o for o in objects if o.get("kind") == "Event"],
        config=config or None,
    )
    return snapshot, workloads


def explain(path: str, elapsed: float, policy: ReadinessPolicy, wall: datetime) -> list[dict[str, Any]]:
    document = json.loads(Path(path).read_text(encoding="utf-8"))
    snapshot, workloads = snapshot_of(objects_of(document))
    tracker = Tracker(policy, ImageFacts(built={}), held_for=elapsed)
    assessment = tracker.assess(snapshot, elapsed, wall)
    rows = []
    for workload in workloads:
        status = assessment.statuses[workload_id(workload)]
        rows.append(
            {
                "file": path,
                "workload": workload_id(workload),
                "namespace": namespace_of(workload),
                "verdict": status.verdict,
                "code": str(status.error.code) if status.error is not None else None,
                "message": status.error.message if status.error is not None else status.message,
                **({"hint": status.error.hint} if status.error is not None else {}),
            }
        )
    return rows


def main(argv: Sequence[str] | None = None, out: TextIO = sys.stdout) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m stagegate.readiness",
        description="Explain stagegate's readiness verdict for kubectl JSON dumps (one snapshot a file).",
    )
    parser.add_argument(
        "--elapsed",
        type=float,
        default=0.0,
        metavar="S",
        help="judge each snapshot as if its state had held S seconds (default 0)",
    )
    parser.add_argument("files", nargs="+", metavar="FILE")
    args = parser.parse_args(argv)
    policy = ReadinessPolicy()
    all_ready = True
    for path in args.files:
        try:
            rows = explain(path, max(0.0, args.elapsed), policy, datetime.now(UTC))
        except (OSError, ValueError) as exc:
            print(f"{path}: cannot read: {exc}", file=sys.stderr)
            return 2
        for row in rows:
            all_ready &= row["verdict"] == "ready"
            out.write(json.dumps(row) + "\n")
    return 0 if all_ready else 1
