"""The explain command: ``python -m stagegate.readiness [--elapsed S] FILE...`` on kubectl JSON dumps.

The files are written by the tests in the shape of ``kubectl get deploy,job,pod -o json``
(a ``v1`` ``List``) or of a single object; the objects are hand-written after the Kubernetes
API types (apps/v1 Deployment, batch/v1 Job, core/v1 Pod), trimmed, not recorded.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from stagegate.readiness.explain import main

REPO = Path(__file__).resolve().parents[2]
LABELS = {"app.kubernetes.io/name": "api-server", "pod-template-hash": "5d9c7b8f6d"}


def deployment(ready: bool = True) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "api-server", "namespace": "shop", "generation": 1},
        "spec": {
            "replicas": 1,
            "progressDeadlineSeconds": 600,
            "selector": {"matchLabels": {"app.kubernetes.io/name": "api-server"}},
            "template": {"metadata": {"labels": LABELS}, "spec": {"containers": [{"name": "api"}]}},
        },
        "status": {
            "observedGeneration": 1,
            "replicas": 1,
            "updatedReplicas": 1,
            **({"readyReplicas": 1, "availableReplicas": 1} if ready else {"unavailableReplicas": 1}),
            "conditions": [
                {
                    "type": "Available",
                    "status": "True" if ready else "False",
                    "reason": "MinimumReplicasAvailable" if ready else "MinimumReplicasUnavailable",
                },
                {
                    "type": "Progressing",
                    "status": "True",
                    "reason": "NewReplicaSetAvailable" if ready else "ReplicaSetUpdated",
                },
            ],
        },
    }


def pod(
    name: str = "api-server-5d9c7b8f6d-x7k2p",
    *,
    ready: bool = True,
    container: dict[str, Any] | None = None,
    unschedulable: bool = False,
    created: str | None = None,
) -> dict[str, Any]:
    state = container or {"running": {"startedAt": "2026-11-28T20:00:05Z"}}
    status: dict[str, Any] = {
        "phase": "Pending" if unschedulable else "Running",
        "conditions": [
            {
                "type": "PodScheduled",
                "status": "False" if unschedulable else "True",
                **(
                    {
                        "reason": "Unschedulable",
                        "message": "0/1 nodes are available: 1 Insufficient memory.",
                    }
                    if unschedulable
                    else {}
                ),
            },
        ],
    }
    if not unschedulable:
        status["conditions"].append({"type": "Ready", "status": "True" if ready else "False"})
        status["containerStatuses"] = [
            {
                "name": "api",
                "image": "example/api-server:1.4.2",
                "ready": ready,
                "restartCount": int(state.pop("restarts", 0)),
                "state": state,
                **({"lastState": state.pop("last")} if "last" in state else {}),
            }
        ]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": "shop",
            "labels": LABELS,
            **({"creationTimestamp": created} if created else {}),
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": "api-server-5d9c7b8f6d",
                    "controller": True,
                }
            ],
        },
        "spec": {
            "containers": [{"name": "api", "image": "example/api-server:1.4.2"}],
            "restartPolicy": "Always",
        },
        "status": status,
    }


def crash_looping() -> dict[str, Any]:
    return {
        "waiting": {"reason": "CrashLoopBackOff", "message": "back-off 20s restarting failed container"},
        "restarts": 2,
        "last": {"terminated": {"exitCode": 1, "reason": "Error"}},
    }


def failed_job() -> list[dict[str, Any]]:
    uid = "3f1c2b7e-9a4d-4c1e-8b2f-6d5e4a3b2c1d"
    labels = {
        "batch.kubernetes.io/controller-uid": uid,
        "batch.kubernetes.io/job-name": "migrate",
        "job-name": "migrate",
    }
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "migrate", "namespace": "shop", "uid": uid},
        "spec": {
            "backoffLimit": 0,
            "completions": 1,
            "parallelism": 1,
            "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}},
            "template": {"metadata": {"labels": labels}, "spec": {"restartPolicy": "Never"}},
        },
        "status": {
            "failed": 1,
            "startTime": "2026-11-28T20:00:00Z",
            "conditions": [
                {"type": "FailureTarget", "status": "True", "reason": "BackoffLimitExceeded"},
                {
                    "type": "Failed",
                    "status": "True",
                    "reason": "BackoffLimitExceeded",
                    "message": "Job has reached the specified backoff limit",
                },
            ],
        },
    }
    job_pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "migrate-q8r4t",
            "namespace": "shop",
            "labels": labels,
            "ownerReferences": [
                {"apiVersion": "batch/v1", "kind": "Job", "name": "migrate", "controller": True}
            ],
        },
        "spec": {
            "containers": [{"name": "migrate", "image": "example/migrate:1.0"}],
            "restartPolicy": "Never",
        },
        "status": {
            "phase": "Failed",
            "containerStatuses": [
                {
                    "name": "migrate",
                    "ready": False,
                    "restartCount": 0,
                    "state": {"terminated": {"exitCode": 3, "reason": "Error"}},
                }
            ],
        },
    }
    return [job, job_pod]


def kubectl_list(*items: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": list(items)}


def write(tmp_path: Path, document: Any, name: str = "snapshot.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(document), encoding="utf-8")
    return str(path)


def explain(*argv: str) -> tuple[int, list[dict[str, Any]]]:
    out = io.StringIO()
    code = main(list(argv), out=out)
    return code, [json.loads(line) for line in out.getvalue().splitlines()]


# -- verdicts ---------------------------------------------------------------------------------


def test_ready_deployment_and_its_pod_give_one_ready_row_and_exit_0(tmp_path: Path) -> None:
    path = write(tmp_path, kubectl_list(deployment(), pod()))
    code, rows = explain(path)
    assert code == 0
    assert [(r["workload"], r["namespace"], r["verdict"], r["code"]) for r in rows] == [
        ("Deployment/api-server", "shop", "ready", None)
    ]


def test_pods_of_a_deployment_are_not_rows_of_their_own(tmp_path: Path) -> None:
    second = pod("api-server-5d9c7b8f6d-m3n8q")
    code, rows = explain(write(tmp_path, kubectl_list(pod(), deployment(), second)))
    assert (code, [r["workload"] for r in rows]) == (0, ["Deployment/api-server"])


def test_pod_of_no_workload_in_the_file_is_a_row(tmp_path: Path) -> None:
    stray = pod("debug-shell")
    stray["metadata"]["labels"] = {"run": "debug-shell"}
    del stray["metadata"]["ownerReferences"]
    code, rows = explain(write(tmp_path, kubectl_list(deployment(), pod(), stray)))
    assert [r["workload"] for r in rows] == ["Deployment/api-server", "Pod/debug-shell"]
    assert code == 0


def test_waiting_deployment_gives_exit_1(tmp_path: Path) -> None:
    code, rows = explain(write(tmp_path, kubectl_list(deployment(ready=False), pod(ready=False))))
    assert code == 1
    assert [(r["verdict"], r["code"]) for r in rows] == [("waiting", None)]


def test_failed_job_is_fatal_with_job_failed_and_exit_1(tmp_path: Path) -> None:
    code, rows = explain(write(tmp_path, kubectl_list(*failed_job())))
    assert code == 1
    assert [(r["workload"], r["verdict"], r["code"]) for r in rows] == [
        ("Job/migrate", "fatal", "JOB_FAILED")
    ]
    assert "BackoffLimitExceeded" in rows[0]["message"]


def unschedulable(tmp_path: Path, created: str | None = None) -> str:
    return write(tmp_path, kubectl_list(deployment(ready=False), pod(unschedulable=True, created=created)))


def test_unschedulable_pod_is_waiting_at_elapsed_0(tmp_path: Path) -> None:
    code, rows = explain("--elapsed", "0", unschedulable(tmp_path))
    assert (code, rows[0]["verdict"], rows[0]["code"]) == (1, "waiting", None)


def test_unschedulable_pod_is_fatal_once_its_grace_has_run(tmp_path: Path) -> None:
    code, rows = explain("--elapsed", "120", unschedulable(tmp_path))
    assert (code, rows[0]["verdict"], rows[0]["code"]) == (1, "fatal", "POD_UNSCHEDULABLE")
    assert "Insufficient memory" in rows[0]["message"]


def test_unschedulable_pod_created_just_now_stays_waiting_whatever_the_elapsed_time(tmp_path: Path) -> None:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    code, rows = explain("--elapsed", "120", unschedulable(tmp_path, created=now))
    assert (code, rows[0]["verdict"], rows[0]["code"]) == (1, "waiting", None)


def test_unschedulable_pod_created_long_ago_is_fatal_at_elapsed_120(tmp_path: Path) -> None:
    code, rows = explain("--elapsed", "120", unschedulable(tmp_path, created="2026-01-01T00:00:00Z"))
    assert (code, rows[0]["code"]) == (1, "POD_UNSCHEDULABLE")


def crash_loop(tmp_path: Path, *others: dict[str, Any]) -> str:
    return write(
        tmp_path, kubectl_list(deployment(ready=False), pod(ready=False, container=crash_looping()), *others)
    )


def test_crash_looping_container_of_the_only_workload_is_waiting_at_elapsed_0(tmp_path: Path) -> None:
    code, rows = explain("--elapsed", "0", crash_loop(tmp_path))
    assert (code, rows[0]["verdict"], rows[0]["code"]) == (1, "waiting", None)
    assert "crash-looping" in rows[0]["message"]


def test_crash_looping_container_of_the_only_workload_is_fatal_at_elapsed_120(tmp_path: Path) -> None:
    code, rows = explain("--elapsed", "120", crash_loop(tmp_path))
    assert (code, rows[0]["verdict"], rows[0]["code"]) == (1, "fatal", "CONTAINER_CRASHLOOP")


def test_crash_looping_container_converges_while_another_workload_is_coming_up(tmp_path: Path) -> None:
    db = deployment(ready=False)
    db["metadata"]["name"] = "db"
    db["spec"]["selector"] = {"matchLabels": {"app.kubernetes.io/name": "db"}}
    code, rows = explain("--elapsed", "120", crash_loop(tmp_path, db))
    assert code == 1
    assert [(r["workload"], r["verdict"]) for r in rows] == [
        ("Deployment/api-server", "waiting"),
        ("Deployment/db", "waiting"),
    ]


def test_single_object_file_is_one_snapshot(tmp_path: Path) -> None:
    code, rows = explain(write(tmp_path, pod("debug-shell")))
    assert code == 0
    assert [(r["workload"], r["verdict"]) for r in rows] == [("Pod/debug-shell", "ready")]


def test_each_file_is_its_own_snapshot(tmp_path: Path) -> None:
    ready = write(tmp_path, kubectl_list(deployment(), pod()), "ready.json")
    failed = write(tmp_path, kubectl_list(*failed_job()), "failed.json")
    code, rows = explain(ready, failed)
    assert code == 1
    assert [(Path(r["file"]).name, r["verdict"]) for r in rows] == [
        ("ready.json", "ready"),
        ("failed.json", "fatal"),
    ]


# -- the row ----------------------------------------------------------------------------------


def test_row_has_exactly_the_documented_keys(tmp_path: Path) -> None:
    path = write(tmp_path, kubectl_list(deployment(), pod()))
    _, rows = explain(path)
    assert rows == [
        {
            "file": path,
            "workload": "Deployment/api-server",
            "namespace": "shop",
            "verdict": "ready",
            "code": None,
            "message": "",
        }
    ]


def test_fatal_row_adds_a_hint(tmp_path: Path) -> None:
    _, rows = explain(write(tmp_path, kubectl_list(*failed_job())))
    assert set(rows[0]) == {"file", "workload", "namespace", "verdict", "code", "message", "hint"}
    assert rows[0]["hint"]


# -- unreadable input -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [None, "{not json", b"\xff\xfe\x00garbage"],
    ids=["missing", "not-json", "not-utf8"],
)
def test_unreadable_file_exits_2_with_a_message_and_no_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | bytes | None
) -> None:
    path = tmp_path / "dump.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content, encoding="utf-8")
    out = io.StringIO()
    assert main([str(path)], out=out) == 2
    err = capsys.readouterr().err
    assert f"{path}: cannot read" in err
    assert "Traceback" not in err
    assert out.getvalue() == ""


# -- as a command -----------------------------------------------------------------------------


def test_module_runs_as_a_command_and_prints_one_json_line(tmp_path: Path) -> None:
    path = write(tmp_path, kubectl_list(*failed_job()))
    done = subprocess.run(
        [sys.executable, "-m", "stagegate.readiness", "--elapsed", "0", path],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1
    row = json.loads(lines[0])
    assert (row["file"], row["workload"], row["verdict"], row["code"]) == (
        path,
        "Job/migrate",
        "fatal",
        "JOB_FAILED",
    )
