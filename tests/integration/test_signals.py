"""Stopping `nox -s e2e` the way CI stops a job: SIGTERM (or SIGINT, Ctrl-C) while each stage
runs, on the real engine and the docker target, with the real nox in a process of its own.

Each run starts in a session of its own (its process group is the run's: whatever stagegate
started is in it), with SIGINT ignored as a job started by ``cmd &`` from a CI script inherits
it, so that SIGTERM alone must stop it — or, in the Ctrl-C case, with SIGINT at its default.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from python_on_whales import DockerClient

from tests.conftest import (
    ROOT,
    Repo,
    default_signal_dispositions,
    remove_images_at_the_end,
    validate_error_file,
)
from tests.integration.conftest import ISOLATED, unique_prefix

pytestmark = pytest.mark.docker

# GitHub Actions sends SIGTERM 7.5 s after SIGINT: the clean-up must be done within it. This is
# the requirement itself, so it is asserted as such (signal sent -> process gone).
GITHUB_GRACE_S = 7.5

MANIFEST = """\
apiVersion: apps/v1
kind: Deployment
metadata: {{name: app, namespace: sig}}
spec:
  selector: {{matchLabels: {{app: app}}}}
  template:
    metadata: {{labels: {{app: app}}}}
    spec:
      containers:
        - name: app
          image: {image}
          imagePullPolicy: IfNotPresent
          command: ["sleep", "3600"]
          readinessProbe:
            exec: {{command: ["{probe}"]}}
            periodSeconds: 1
"""


class Project(Repo):
    """A repository using stagegate (its noxfile and tasks/), one busybox image, the docker
    target; :meth:`set_up` makes the chosen stage the one that takes long."""

    def set_up(self, busybox_image: str, ns: str, slow: str, token: str) -> None:
        self.ns = ns
        self.token = token
        run = f"RUN echo {token} && sleep 60\n" if slow == "build" else f"RUN echo {token}\n"
        self.write("app/Dockerfile", f"FROM {busybox_image}\n{run}")
        self.write("k8s/ns.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: sig}\n")
        probe = "false" if slow == "deploy" else "true"
        self.write("k8s/app.yaml", MANIFEST.format(image=f"{ns}/app", probe=probe))
        smoke = '["sleep", "60"]' if slow == "verify" else '["true"]'
        e2e = '["sleep", "61"]' if slow == "e2e" else '["true"]'
        self.config(
            'target = "docker"\n'
            f'[[tool.stagegate.images]]\nname = "{ns}/app"\ncontext = "app"\nsmoke = {smoke}\n'
            f'[tool.stagegate.cluster]\nname = "{ns}"\n'
            '[tool.stagegate.deploy]\nmanifests = "k8s"\npoll_interval = 0.3\ntimeout = 300\n'
            f"[tool.stagegate.e2e]\ncommand = {e2e}\nallow_no_tests = true\n"
        )

    def owner(self) -> str:
        return json.loads((self.artifacts / "owner.json").read_text())["owner"]


@pytest.fixture
def project(tmp_path: Path, docker: DockerClient) -> Iterator[Project]:
    root = tmp_path / "repo"
    root.mkdir()
    shutil.copy(ROOT / "noxfile.py", root / "noxfile.py")
    shutil.copytree(ROOT / "tasks", root / "tasks", ignore=shutil.ignore_patterns("__pycache__"))
    project = Project(root)
    project.ns = prefix = unique_prefix()
    yield project
    if (project.artifacts / "owner.json").exists():  # whatever a failed test left
        owned = [("label", f"dev.stagegate.owner={project.owner()}")]
        for container in docker.container.list(all=True, filters=owned):
            docker.container.remove(container, force=True, volumes=True)
        for network in docker.network.list(filters=owned):
            docker.network.remove(network)
    remove_images_at_the_end(prefix)


def child_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in (*ISOLATED, "NO_COLOR")}
    env.update(GITHUB_ACTIONS="true", GITHUB_STEP_SUMMARY=str(tmp_path / "summary.md"))
    return env


def start_chain(project: Project, log: Path, env: dict[str, str], *, sigint: object) -> subprocess.Popen:
    """``nox -s e2e -- --target docker`` in a new session, with SIGINT at ``sigint``'s disposition."""

    def disposition() -> None:
        default_signal_dispositions()  # SIGTERM and SIGHUP at their default, whatever we inherited
        signal.signal(signal.SIGINT, sigint)  # type: ignore[arg-type]

    with log.open("w") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "nox", "--no-color", "-s", "e2e", "--", "--target", "docker"],
            cwd=project.root,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=disposition,
        )


def group_members(group: int) -> list[str]:
    """The processes still in process group ``group`` (argv of each)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        if int(fields[2]) == group and fields[0] != "Z":
            found.append(f"{entry.name}: {cmdline.strip()}")
    return found


def left_running(group: int, margin_s: float = 2.0) -> list[str]:
    """The members of process group ``group`` still there ``margin_s`` after its leader ended:
    a process the last sweep killed may stay in the table a moment on a loaded machine (the
    margin); one nothing stopped, still running, is what this names."""
    deadline = time.monotonic() + margin_s
    while (left := group_members(group)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def stage_status(project: Project, stage: str) -> str | None:
    try:
        return json.loads((project.artifacts / "run.json").read_text())["stages"][stage]["status"]
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        return None


def wait_until(process: subprocess.Popen, log: Path, what: str, ready: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 240
    while not ready():
        if process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"never got to {what} (exit {process.poll()}):\n{log.read_text()[-3000:]}")
        time.sleep(0.2)


def running_commands(docker: DockerClient) -> str:
    return subprocess.run(
        ["docker", "ps", "--no-trunc", "--format", "{{.Command}}"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout


# What shows that each stage is doing its slow part.
def stage_busy(stage: str, project: Project, process: subprocess.Popen, docker: DockerClient) -> bool:
    if stage_status(project, stage) != "running":
        return False
    if stage == "build":  # the RUN step's container
        return project.token in running_commands(docker) and "sleep 60" in running_commands(docker)
    if not (project.artifacts / "owner.json").exists():
        return False
    owned = [("label", f"dev.stagegate.owner={project.owner()}")]
    if stage == "verify":
        return any(
            c.state.running
            for c in docker.container.list(filters=[*owned, ("label", "dev.stagegate.purpose=smoke")])
        )
    if stage == "deploy":
        return bool(docker.container.list(filters=owned))
    return any(line.endswith("sleep 61") for line in group_members(process.pid))


def later_stages(stage: str) -> list[str]:
    order = ["preflight", "build", "verify", "cluster", "deploy", "e2e"]
    return order[order.index(stage) + 1 :]


def stop_and_measure(process: subprocess.Popen, log: Path, signum: int, times: int = 1) -> float:
    """Send ``signum`` (``times`` times, 50 ms apart) to the run; seconds from the first to its exit."""
    sent = time.monotonic()
    for _ in range(times):
        os.kill(process.pid, signum)
        time.sleep(0.05)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        pytest.fail(f"the run did not end after {signal.Signals(signum).name}:\n{log.read_text()[-3000:]}")
    return time.monotonic() - sent


def assert_torn_down(project: Project, docker: DockerClient, env: dict[str, str]) -> None:
    """``nox -s teardown`` removes everything the run started on the engine."""
    result = subprocess.run(
        [sys.executable, "-m", "nox", "--no-color", "-s", "teardown", "--", "--target", "docker"],
        cwd=project.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    owned = [("label", f"dev.stagegate.owner={project.owner()}")]
    assert docker.container.list(all=True, filters=owned) == []
    assert docker.network.list(filters=owned) == []
    assert (
        project.token
        not in subprocess.run(
            ["docker", "ps", "-a", "--no-trunc", "--format", "{{.Command}}"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
    )  # no build step's container either


@pytest.mark.parametrize(
    ("stage", "signum", "sigint"),
    [
        ("build", signal.SIGTERM, signal.SIG_IGN),
        ("verify", signal.SIGTERM, signal.SIG_IGN),
        ("deploy", signal.SIGTERM, signal.SIG_IGN),
        ("e2e", signal.SIGTERM, signal.SIG_IGN),
        ("deploy", signal.SIGINT, signal.SIG_DFL),
    ],
    ids=["build-sigterm", "verify-sigterm", "deploy-sigterm", "e2e-sigterm", "deploy-ctrl-c"],
)
def test_a_stop_signal_ends_the_running_stage_like_ctrl_c(
    project: Project, busybox_image: str, docker: DockerClient, tmp_path: Path, stage, signum, sigint
) -> None:
    project.set_up(busybox_image, project.ns, stage, secrets.token_hex(6))
    env = child_env(tmp_path)
    log = tmp_path / "nox.log"
    process = start_chain(project, log, env, sigint=sigint)
    name = signal.Signals(signum).name
    try:
        wait_until(process, log, f"{stage} running", lambda: stage_busy(stage, project, process, docker))
        took = stop_and_measure(process, log, signum)
        output = log.read_text()
        assert took < GITHUB_GRACE_S, f"{took:.1f} s from {name} to exit:\n{output[-3000:]}"
        assert process.returncode != 0
        assert left_running(process.pid) == []
        record = json.loads((project.artifacts / "run.json").read_text())
        assert record["stages"][stage]["status"] == "interrupted"
        assert [record["stages"][s]["status"] for s in later_stages(stage)] == ["not-run"] * len(
            later_stages(stage)
        )
        error = validate_error_file(project.artifacts / "error.json")
        assert (error["stage"], error["code"], error["subject"]["signal"]) == (stage, "INTERRUPTED", name)
        assert error["message"] == f"{stage} was interrupted by {name}"
        assert "Traceback" not in output
        for later in later_stages(stage):  # nox ran no session after the interrupted one
            assert f"Running session {later}" not in output
        junit = (project.artifacts / "junit.xml").read_text()
        assert f"{stage} was interrupted by {name}" in junit
        assert f"{stage} was interrupted by {name}" in (tmp_path / "summary.md").read_text()
        if stage in ("deploy", "e2e"):  # kept for debugging, as after a failure: the hint says so
            assert "nox -s teardown" in error["hint"]
            assert docker.container.list(filters=[("label", f"dev.stagegate.owner={project.owner()}")])
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert_torn_down(project, docker, env)


def test_a_second_sigterm_during_the_clean_up_ends_the_run_at_once_with_valid_files(
    project: Project, busybox_image: str, docker: DockerClient, tmp_path: Path
) -> None:
    project.set_up(busybox_image, project.ns, "verify", secrets.token_hex(6))
    env = child_env(tmp_path)
    log = tmp_path / "nox.log"
    process = start_chain(project, log, env, sigint=signal.SIG_IGN)
    try:
        wait_until(process, log, "verify running", lambda: stage_busy("verify", project, process, docker))
        took = stop_and_measure(process, log, signal.SIGTERM, times=2)
        # 128 + 15: ended by the second signal itself, not by nox after the clean-up (130)
        assert process.returncode == 128 + signal.SIGTERM, log.read_text()[-3000:]
        assert took < GITHUB_GRACE_S
        assert left_running(process.pid) == []
        assert stage_status(project, "verify") == "interrupted"
        error = validate_error_file(project.artifacts / "error.json")
        assert (error["code"], error["subject"]["signal"]) == ("INTERRUPTED", "SIGTERM")
        assert "verify was interrupted by SIGTERM" in (project.artifacts / "junit.xml").read_text()
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert_torn_down(project, docker, env)  # a smoke container its clean-up had no time for, too
