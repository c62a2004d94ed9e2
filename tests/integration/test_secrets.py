"""Secrets are never written in clear: a secret build arg and a Secret value appear in no file
of the artifacts dir and in no line of the terminal — after a passing build and deploy on the
docker target, after a build whose RUN prints the token, and on kind (where kubectl must still
get the real values)."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote_plus

import pytest
from python_on_whales import DockerClient
from stagegate import redact

from tests.conftest import LABEL_LINE, Repo
from tests.integration import test_docker_target as docker_target
from tests.integration import test_kind_target as kind_target
from tests.integration.conftest import pipeline

pytestmark = pytest.mark.docker

TOKEN = "npm_FAKEtoken0123456789"  # the secret build arg
SECRET_VALUE = "db-pass-Zq8v7x"  # the value of the manifests' Secret
SHORT = "pw12"  # a Secret value too short to be registered (MIN_LENGTH)
SHORT_B64 = base64.b64encode(SHORT.encode()).decode()


@pytest.fixture(autouse=True)
def _fresh_registry(monkeypatch: pytest.MonkeyPatch):
    """Nothing registered by an earlier test helps: each run must register its own secrets."""
    redact.SECRETS.clear()
    monkeypatch.setenv("STAGEGATE_TEST_NPM_TOKEN", TOKEN)
    yield
    redact.SECRETS.clear()


def forms(value: str) -> list[str]:
    return [value, base64.b64encode(value.encode()).decode(), quote_plus(value)]


def leaks(repo: Repo, terminal: str, *values: str) -> list[str]:
    """Every file under the artifacts dir (and the terminal) that holds one of ``values``."""
    found = []
    for path in [p for p in repo.artifacts.rglob("*") if p.is_file()]:
        text = path.read_bytes().decode("utf-8", "replace")
        found += [
            f"{path.relative_to(repo.artifacts)}: {form}" for v in values for form in forms(v) if form in text
        ]
    found += [f"terminal: {form}" for v in values for form in forms(v) if form in terminal]
    return found


def with_secret_build_arg(repo: Repo, ns: str) -> None:
    """The image of the test's stack takes NPM_TOKEN from the environment."""
    pyproject = repo.root / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace(
            f'name = "{ns}/app"\n',
            f'name = "{ns}/app"\nbuild_args = {{ NPM_TOKEN = "${{STAGEGATE_TEST_NPM_TOKEN}}" }}\n',
        )
    )


@pytest.fixture(autouse=True)
def _teardown_docker_target(docker: DockerClient, ns: str, repo: Repo):
    yield
    from stagegate.targets.docker import DockerTarget

    # the repository's own artifacts dir: its owner id is the one that created the objects
    DockerTarget(project=ns, artifacts=repo.artifacts, docker=docker).teardown(delete=True)


def test_a_passing_build_and_deploy_on_the_docker_target_writes_no_secret(
    repo, docker, busybox_image, reporter, ns
) -> None:
    docker_target.stack(repo, ns, busybox_image)
    repo.write(
        "app/Dockerfile", f'FROM {busybox_image}\nARG NPM_TOKEN\nRUN test -n "$NPM_TOKEN" && mkdir /www\n'
    )
    manifest = repo.root / "k8s/app.yaml"
    manifest.write_text(manifest.read_text().replace("TOKEN: s3cret", f"TOKEN: {SECRET_VALUE}"))
    repo.write("k8s/kustomization.yaml", "resources: [app.yaml]\n")  # a render log, with the Secret
    with_secret_build_arg(repo, ns)
    code = docker_target.chain(repo, docker, reporter, "cluster", "deploy", "e2e")
    terminal = reporter.console.file.getvalue()
    assert code == 0, terminal
    assert leaks(repo, terminal, TOKEN, SECRET_VALUE) == []
    # redacted, not missing: the files still say what was there
    inputs = json.loads(next((repo.artifacts / "inputs").glob("*.json")).read_text())
    assert inputs["build_args"]["NPM_TOKEN"] == redact.fingerprint(TOKEN)
    assert "TOKEN: <redacted>" in (repo.artifacts / "manifests.yaml").read_text()
    assert "<redacted>" in (repo.artifacts / "logs" / "verify" / "render.log").read_text()


def test_a_container_that_prints_its_secret_and_crashes_leaves_no_secret_in_the_diagnostics(
    repo, docker, busybox_image, reporter, ns
) -> None:
    docker_target.stack(
        repo,
        ns,
        busybox_image,
        web_command='["sh", "-c", "echo my token is $TOKEN; exit 1"]',
        client_probe='["true"]',
    )
    manifest = repo.root / "k8s/app.yaml"
    manifest.write_text(manifest.read_text().replace("TOKEN: s3cret", f"TOKEN: {SECRET_VALUE}"))
    code = docker_target.chain(repo, docker, reporter, "cluster", "deploy")
    terminal = reporter.console.file.getvalue()
    error = repo.error()
    assert code == 1 and error is not None and error["code"] == "CONTAINER_CRASHLOOP", terminal
    logs = list((repo.artifacts / "diagnostics" / "containers").glob("*_web.log"))
    assert logs and "my token is <redacted>" in logs[0].read_text()  # collected, redacted
    assert "my token is <redacted>" in error["log_excerpt"]
    assert leaks(repo, terminal, SECRET_VALUE) == []


def test_a_failed_build_whose_run_prints_the_token_writes_no_secret(
    repo, docker, busybox_image, reporter, ns
) -> None:
    docker_target.stack(repo, ns, busybox_image)
    repo.write(
        "app/Dockerfile",
        f'FROM {busybox_image}\n{LABEL_LINE}ARG NPM_TOKEN\nRUN echo "token is $NPM_TOKEN ({ns})" && exit 3\n',
    )
    with_secret_build_arg(repo, ns)
    try:
        assert pipeline(repo, docker=docker, reporter=reporter) == 1
        terminal = reporter.console.file.getvalue()
        error = repo.error()
        assert error is not None and error["code"] == "BUILD_FAILED"
        assert leaks(repo, terminal, TOKEN) == []
        assert "NPM_TOKEN=<redacted>" in error["command"]["argv"]
        log = (repo.artifacts / error["log_file"].removeprefix(".stagegate/")).read_text()
        assert "--build-arg NPM_TOKEN=<redacted>" in log and "token is <redacted>" in log
    finally:  # the legacy builder keeps the failed RUN's container (with the build args)
        for container in docker.container.list(all=True, filters=[("status", "exited")]):
            if ns in " ".join(container.config.cmd or []):
                docker.container.remove(container, force=True)


def test_on_kind_kubectl_gets_the_secret_and_no_file_holds_it(
    repo,
    docker,
    busybox_image,
    reporter,
    ns,
    fake,
    cluster_name,
) -> None:
    kind_target.stack(repo, ns, busybox_image, cluster=cluster_name)
    manifest = repo.root / "k8s/app.yaml"
    manifest.write_text(
        manifest.read_text()
        + "---\napiVersion: v1\nkind: Secret\nmetadata: {name: creds, namespace: default}\n"
        + f"data: {{TOKEN: {base64.b64encode(SECRET_VALUE.encode()).decode()}, PIN: {SHORT_B64}}}\n"
    )
    kind_target.deploy_scenario(fake, [{"at": 0, "phase": "Running", "ready": True}])
    code = kind_target.chain(repo, docker, reporter, "cluster", "deploy")
    terminal = reporter.console.file.getvalue()
    assert code == 0, terminal
    assert leaks(repo, terminal, SECRET_VALUE, SHORT) == []  # too short to register: hidden by structure
    applied = (repo.artifacts / "applied.yaml").read_text()
    assert "TOKEN: <redacted>" in applied
    stored = "".join(p.read_text() for p in fake.state.rglob("api.json"))
    assert base64.b64encode(SECRET_VALUE.encode()).decode() in stored  # the cluster has the real one
