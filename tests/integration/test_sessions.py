"""The real nox sessions, run as a user runs them, on scratch repositories and on the example."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from python_on_whales import DockerClient

from tests.conftest import (
    CLUSTER_PREFIX,
    REQUIRE_DOCKER,
    ROOT,
    Repo,
    remove_images_at_the_end,
    validate_error_file,
)
from tests.integration.conftest import ISOLATED, unique_prefix

pytestmark = pytest.mark.docker


def nox(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if k not in (*ISOLATED, "NO_COLOR")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "nox", "--no-color", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture
def project(repo: Repo, busybox_image: str) -> Repo:
    """A repository using stagegate: its noxfile and tasks/, plus one busybox image."""
    shutil.copy(ROOT / "noxfile.py", repo.root / "noxfile.py")
    shutil.copytree(ROOT / "tasks", repo.root / "tasks", ignore=shutil.ignore_patterns("__pycache__"))
    prefix = unique_prefix()
    name = f"{prefix}/app"
    repo.write("app/Dockerfile", f"FROM {busybox_image}\nRUN echo hello > /hello\n")
    repo.config(f'[[tool.stagegate.images]]\nname = "{name}"\ncontext = "app"\n')
    repo.image_name = name  # type: ignore[attr-defined]
    yield repo
    remove_images_at_the_end(prefix)  # :latest and the run's sg- tags alike


def test_build_session_builds_and_records_the_image(project: Repo) -> None:
    result = nox(project.root, "-s", "build", "--", "-j", "1")
    assert result.returncode == 0, result.stderr
    record = project.run_record()
    options = record["options"]  # every option by name, beside the argv it came from
    assert (options["argv"], options["jobs"], options["keep_going"], options["only"]) == (
        ["-j", "1"],
        1,
        False,
        [],
    )
    assert [record["stages"][s]["status"] for s in ("preflight", "build")] == ["passed", "passed"]
    image = record["stages"]["build"]["outputs"]["images"][project.image_name]
    assert image["status"] == "built" and image["image_id"].startswith("sha256:")
    assert not (project.artifacts / "error.json").exists()


def test_broken_dockerfile_fails_without_traceback(project: Repo) -> None:
    project.write("app/Dockerfile", "FROM stagegate-test/busybox:1\nRUN exit 3\n")
    result = nox(project.root, "-s", "build")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr + result.stdout
    assert "BUILD_FAILED" in result.stderr
    error = validate_error_file(project.artifacts / "error.json")
    assert (error["code"], error["subject"]["line"], error["subject"]["exit_code"]) == ("BUILD_FAILED", 2, 3)


def test_daemon_down_fails_in_preflight_without_traceback(project: Repo, tmp_path: Path) -> None:
    result = nox(project.root, "-s", "build", env={"DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"})
    assert result.returncode == 1
    assert "Traceback" not in result.stderr + result.stdout
    assert "Prerequisite session preflight was not successful" in result.stderr
    error = validate_error_file(project.artifacts / "error.json")
    assert (error["stage"], error["code"]) == ("preflight", "DOCKER_UNAVAILABLE")
    assert error["not_run"] == ["build", "verify", "cluster", "deploy", "e2e"]


def test_build_alone_after_failed_preflight_refuses_with_upstream_failed(
    project: Repo, tmp_path: Path
) -> None:
    nox(project.root, "-s", "preflight", env={"DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"})
    result = nox(project.root, "-s", "build", "--no-dependencies")
    assert result.returncode == 1
    error = validate_error_file(project.artifacts / "error.json")
    assert (error["stage"], error["code"], error["subject"]["stage"]) == (
        "build",
        "UPSTREAM_FAILED",
        "preflight",
    )
    assert error["cause"]["code"] == "DOCKER_UNAVAILABLE"
    assert not (project.artifacts / "logs" / "build").exists()  # nothing was built


def test_bad_configuration_and_unknown_options_are_config_invalid(project: Repo) -> None:
    result = nox(project.root, "-s", "build", "--", "--keep-goin")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert validate_error_file(project.artifacts / "error.json")["code"] == "CONFIG_INVALID"

    project.config(
        '[[tool.stagegate.images]]\nname = "x/app"\ncontext = "app"\ndokerfile = "app/Dockerfile"\n'
    )
    result = nox(project.root, "-s", "build")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    error = validate_error_file(project.artifacts / "error.json")
    assert error["code"] == "CONFIG_INVALID"
    assert error["subject"]["key"] == "tool.stagegate.images[0].dokerfile"
    assert "did you mean 'dockerfile'" in error["hint"]


def test_artifacts_dir_follows_stagegate_artifacts(project: Repo, tmp_path: Path) -> None:
    elsewhere = tmp_path / "ci-artifacts"
    result = nox(project.root, "-s", "build", env={"STAGEGATE_ARTIFACTS": str(elsewhere)})
    assert result.returncode == 0, result.stderr
    assert json.loads((elsewhere / "run.json").read_text())["stages"]["build"]["status"] == "passed"
    assert not project.artifacts.exists()


def test_doctor_reports_and_never_fails(project: Repo, tmp_path: Path) -> None:
    result = nox(project.root, "-s", "doctor", env={"DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"})
    assert result.returncode == 0
    assert "DOCKER_UNAVAILABLE" in result.stderr
    assert not (project.artifacts / "error.json").exists()  # doctor writes nothing


def test_the_example_stack_builds_and_a_second_run_rebuilds_nothing(
    tmp_path: Path, docker: DockerClient
) -> None:
    base = os.environ.get("BASE_IMAGE", "python:3.12-slim")
    if not docker.image.exists(base):
        message = f"the example's base image {base} is not present (see .ci/run for seeding one)"
        pytest.fail(message) if REQUIRE_DOCKER else pytest.skip(message)
    artifacts = tmp_path / "artifacts"
    env = {"STAGEGATE_ARTIFACTS": str(artifacts), "BASE_IMAGE": base}
    first = nox(ROOT, "-s", "build", env=env)
    assert first.returncode == 0, first.stderr
    second = nox(ROOT, "-s", "build", env=env)
    assert second.returncode == 0, second.stderr
    built = json.loads((artifacts / "run.json").read_text())["stages"]["build"]["outputs"]["images"]
    assert set(built) == {"example/base", "example/api-server", "example/worker"}
    assert {entry["status"] for entry in built.values()} == {"up to date"}
    version = docker.run(
        built["example/api-server"]["ref"], ["python3", "-m", "api", "--version"], remove=True
    )
    assert version.strip().startswith("api-server ")


def test_deploy_session_on_the_fake_kind_fails_fast_on_a_crash_loop(project: Repo, tmp_path: Path) -> None:
    """`nox -s deploy` as a user types it, the kind target played by tests/fakes."""
    state = tmp_path / "fake-k8s"
    state.mkdir()
    (state / "scenario.json").write_text(
        json.dumps(
            {
                "workloads": {
                    "Deployment/app": [
                        {
                            "at": 0,
                            "phase": "Running",
                            "waiting": "CrashLoopBackOff",
                            "restarts": 2,
                            "last_exit_code": 9,
                        }
                    ]
                }
            }
        )
    )
    project.write("k8s/app.yaml", APP_MANIFEST.format(image=project.image_name))
    project.write(
        "pyproject.toml",
        project.root.joinpath("pyproject.toml").read_text()
        + '[tool.stagegate.deploy]\nmanifests = "k8s"\npoll_interval = 0.3\n'
        + f'[tool.stagegate.cluster]\nname = "{CLUSTER_PREFIX}-{secrets.token_hex(3)}"\n',
    )
    env = {
        "FAKE_K8S_STATE": str(state),
        "FAKE_KIND_NODE_IMAGE": "stagegate-test/busybox:1",
        "PATH": f"{ROOT / 'tests' / 'fakes' / 'bin'}{os.pathsep}{os.environ['PATH']}",
    }
    try:
        result = nox(project.root, "-s", "deploy", "--", "--target", "kind", env=env)
        assert result.returncode == 1
        assert "Traceback" not in result.stderr
        assert "Session e2e" not in result.stderr
        error = validate_error_file(project.artifacts / "error.json")
        assert (error["stage"], error["code"], error["subject"]["exit_code"]) == (
            "deploy",
            "CONTAINER_CRASHLOOP",
            9,
        )
        assert (
            "Session deploy aborted: CONTAINER_CRASHLOOP" in result.stderr
        )  # nox's own line names the cause
    finally:
        nox(project.root, "-s", "teardown", env=env)


APP_MANIFEST = """\
apiVersion: apps/v1
kind: Deployment
metadata: {{name: app}}
spec:
  selector: {{matchLabels: {{app: app}}}}
  template:
    metadata: {{labels: {{app: app}}}}
    spec:
      containers:
        - {{name: app, image: {image}, imagePullPolicy: IfNotPresent}}
"""


def test_deploy_session_on_the_fake_kind_is_apply_failed_with_the_api_servers_words(
    project: Repo, tmp_path: Path
) -> None:
    """A Deployment with a misspelt field (``minReadySecond``) passes every check of stagegate's
    own and is refused by the API server's strict decoding (here the strict fake kubectl):
    deploy stops with APPLY_FAILED quoting it."""
    state = tmp_path / "fake-k8s"
    state.mkdir()
    manifest = APP_MANIFEST.format(image=project.image_name).replace(
        "spec:\n", "spec:\n  minReadySecond: 5\n", 1
    )
    assert "  minReadySecond: 5\n  selector:" in manifest
    project.write("k8s/app.yaml", manifest)
    project.write(
        "pyproject.toml",
        project.root.joinpath("pyproject.toml").read_text()
        + '[tool.stagegate.deploy]\nmanifests = "k8s"\npoll_interval = 0.3\n'
        + f'[tool.stagegate.cluster]\nname = "sg{secrets.token_hex(3)}"\n',
    )
    env = {
        "FAKE_K8S_STATE": str(state),
        "FAKE_KIND_NODE_IMAGE": "stagegate-test/busybox:1",
        "PATH": f"{ROOT / 'tests' / 'fakes' / 'bin'}{os.pathsep}{os.environ['PATH']}",
    }
    try:
        result = nox(project.root, "-s", "deploy", "--", "--target", "kind", env=env)
        assert result.returncode == 1, result.stderr
        assert "Traceback" not in result.stderr
        error = validate_error_file(project.artifacts / "error.json")
        assert (error["stage"], error["code"]) == ("deploy", "APPLY_FAILED"), error
        assert 'strict decoding error: unknown field "spec.minReadySecond"' in error["message"], error
        assert "Session deploy aborted: APPLY_FAILED" in result.stderr
    finally:
        nox(project.root, "-s", "teardown", env=env)


def test_help_lists_the_options_once_and_runs_nothing(project: Repo) -> None:
    result = nox(project.root, "-s", "verify", "--", "--target", "docker", "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("usage: nox -s <stage> -- [OPTIONS]") == 1  # not once per session
    assert "  --jobs N, -j N\n      at most N builds at once" in result.stdout
    assert "  --bundle-in DIR\n" in result.stdout
    for session in ("preflight", "build", "verify"):
        assert f"Session {session} skipped: options listed above; nothing ran" in result.stderr
    assert not (project.artifacts / "run.json").exists()  # no stage began

    prune = nox(project.root, "-s", "prune", "--", "-h")
    assert prune.returncode == 0, prune.stderr
    assert "usage: nox -s prune -- [OPTIONS]" in prune.stdout and "  --keep N\n" in prune.stdout
    assert "--keep-going" not in prune.stdout


def test_teardown_rejects_an_unknown_option(project: Repo) -> None:
    result = nox(project.root, "-s", "teardown", "--", "--bogus")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr + result.stdout
    assert "CONFIG_INVALID: unknown option '--bogus'" in result.stderr
    assert "Session teardown aborted" in result.stderr
