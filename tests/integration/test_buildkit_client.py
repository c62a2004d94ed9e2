"""The BuildKit of a Docker client that runs it itself (clients before 23.0), for real, and the
legacy builder refusing a Dockerfile that needs BuildKit.

The BuildKit tests use the first ``docker`` on PATH whose client version is before 23.0 (or
the one ``STAGEGATE_TEST_BUILDKIT_DOCKER`` names) and skip with the reason when there is none.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from python_on_whales import DockerClient
from stagegate.builder import client_runs_buildkit
from stagegate.config import load_config
from stagegate.dockerclient import docker_client
from stagegate.init import init_repository
from stagegate.stages.preflight_dockerfiles import check_buildkit_needs

from tests.conftest import BUSYBOX_IMAGE, Repo, buildkit_client
from tests.integration.conftest import image_table, images, pipeline, run

pytestmark = pytest.mark.docker
SECRET = "s3cr3t-value-for-the-buildkit-test"


@pytest.fixture
def buildkit_env(monkeypatch: pytest.MonkeyPatch, busybox_image: str) -> str:
    client = buildkit_client()
    if client is None:
        pytest.skip("no Docker client that runs BuildKit itself (a client before 23.0) on PATH")
    monkeypatch.setenv("STAGEGATE_DOCKER", client)
    return client


def test_target_secret_targetarch_and_file_arg_for_real(
    repo: Repo, ns: str, buildkit_env: str, reporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SG_TEST_SECRET", SECRET)
    repo.write(
        "app/Dockerfile",
        f"""\
        FROM {BUSYBOX_IMAGE} AS build
        ARG TARGETARCH
        ARG NODE_VERSION
        RUN --mount=type=secret,id=token,required=true \\
            test "$(cat /run/secrets/token)" = "{SECRET}" && \\
            echo "$TARGETARCH" > /arch && echo "$NODE_VERSION" > /node
        FROM build AS final
        RUN echo final > /stage
        FROM build AS other
        RUN echo other > /stage
        """,
    )
    repo.write("app/.nvmrc", "20.11.1\n")
    repo.config(
        f"""\
        [[tool.stagegate.images]]
        name = "{ns}/app"
        context = "app"
        target = "final"
        build_args = {{ NODE_VERSION = {{ file = "app/.nvmrc" }} }}
        secrets = [{{ id = "token", env = "SG_TEST_SECRET" }}]
        tags = ["dev"]
        labels = {{ "org.example.team" = "platform" }}
        """
    )
    docker = docker_client()
    assert pipeline(repo, docker=docker, reporter=reporter) == 0, repo.error()
    record = repo.run_record()
    assert record["stages"]["preflight"]["outputs"]["builder"] == "buildkit-client"
    ref = images(repo)[f"{ns}/app"]["ref"]
    container = docker.run(ref, ["cat", "/stage", "/arch", "/node"], remove=True)
    arch = docker.version().server.arch
    assert container.split() == ["final", arch, "20.11.1"]
    image = docker.image.inspect(f"{ns}/app:dev")
    assert image.config.labels["org.example.team"] == "platform"
    # The secret value is nowhere: artifacts dir, terminal.
    for path in repo.artifacts.rglob("*"):
        if path.is_file():
            assert SECRET not in path.read_text(errors="replace"), path
    assert SECRET not in reporter.console.file.getvalue()
    log = (repo.artifacts / "logs" / "build" / f"{ns}-app.log").read_text()
    assert "DOCKER_BUILDKIT=1" in log and "--secret id=token,env=SG_TEST_SECRET" in log


def test_a_failing_run_is_parsed_to_its_line_and_exit_code(
    repo: Repo, ns: str, buildkit_env: str, reporter
) -> None:
    repo.write(
        "app/Dockerfile",
        f"FROM {BUSYBOX_IMAGE}\nRUN --mount=type=cache,target=/c true\n\nRUN echo failing >&2; \\\n    exit 7\n",
    )
    repo.config(f'[[tool.stagegate.images]]\nname = "{ns}/app"\ncontext = "app"\n')
    assert pipeline(repo, docker=docker_client(), reporter=reporter) == 1
    error = repo.error()
    assert error["code"] == "BUILD_FAILED"
    assert (error["subject"]["line"], error["subject"]["exit_code"]) == (4, 7)
    assert "app/Dockerfile:4" in error["message"]


@pytest.mark.parametrize(
    ("dockerfile", "line", "reason"),
    [
        (f"FROM {BUSYBOX_IMAGE}\nRUN true\nCOPY nope.txt /x\n", 3, "not found"),
        (
            f"FROM {BUSYBOX_IMAGE}\nRUN --mount=type=bogus,target=/x true\n",
            2,
            'unsupported mount type "bogus"',
        ),
    ],
)
def test_a_missing_copy_source_and_a_bad_mount_name_their_line(
    repo: Repo, ns: str, buildkit_env: str, reporter, dockerfile: str, line: int, reason: str
) -> None:
    repo.write("app/Dockerfile", dockerfile)
    repo.config(f'[[tool.stagegate.images]]\nname = "{ns}/app"\ncontext = "app"\n')
    assert pipeline(repo, docker=docker_client(), reporter=reporter) == 1
    error = repo.error()
    assert error["code"] == "BUILD_FAILED" and error["subject"]["line"] == line
    assert reason in error["subject"]["reason"]


def test_the_legacy_builder_refuses_a_dockerfile_that_needs_buildkit(
    repo: Repo, ns: str, reporter, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, busybox_image: str
) -> None:
    """Never skipped: the legacy builder is whatever client is first on PATH when it is 23.0
    or newer without buildx; otherwise the build stage is given the legacy builder by the
    ledger as preflight would record it."""
    monkeypatch.delenv("STAGEGATE_DOCKER", raising=False)
    repo.write("app/Dockerfile", f"FROM {busybox_image}\nARG TARGETARCH\nRUN echo $TARGETARCH > /arch\n")
    repo.config(f'[[tool.stagegate.images]]\nname = "{ns}/app"\ncontext = "app"\n')
    docker = DockerClient()
    config = load_config(repo.root)
    engine = {"server_version": docker.version().server.version, "os": "linux", "arch": "amd64"}
    checks = check_buildkit_needs(config, list(config.images), "legacy", engine)
    assert len(checks) == 1
    error = checks[0].error
    assert error.code == "BUILDKIT_REQUIRED"
    assert error.subject["line"] == 3 and "app/Dockerfile:3" in error.message
    if docker.buildx.is_installed() or client_runs_buildkit(docker.version().client.version or ""):
        return  # the first client on PATH has BuildKit: the stage would not pick the legacy builder
    assert run(repo, "preflight", docker=docker, reporter=reporter) == 1
    assert repo.error()["code"] == "BUILDKIT_REQUIRED"
    assert not (repo.artifacts / "logs" / "build").exists()


# -- a `# syntax=` first line (Docker's own docs put it in every example) ------------------------

SYNTAX = "# syntax=docker/dockerfile:1\n"
TEAM_DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: api}
spec:
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec:
      containers:
        - name: api
          image: registry.example/team/api:1.4.0
          ports: [{containerPort: 8080, name: http}]
---
apiVersion: v1
kind: Service
metadata: {name: api}
spec:
  selector: {app: api}
  ports: [{port: 80, targetPort: http}]
"""


def legacy_client(monkeypatch: pytest.MonkeyPatch) -> DockerClient:
    """The first client on PATH, when stagegate would build with the legacy builder there."""
    monkeypatch.delenv("STAGEGATE_DOCKER", raising=False)
    docker = DockerClient()
    if docker.buildx.is_installed() or client_runs_buildkit(docker.version().client.version or ""):
        pytest.skip("the first Docker client on PATH builds with BuildKit: no legacy builder to test")
    return docker


def test_a_syntax_line_builds_with_the_legacy_builder_and_is_one_warning(
    repo: Repo, ns: str, reporter, monkeypatch: pytest.MonkeyPatch, busybox_image: str
) -> None:
    docker = legacy_client(monkeypatch)
    for name in ("api", "web"):
        repo.write(f"{name}/Dockerfile", f"{SYNTAX}FROM {busybox_image}\nRUN echo {name} > /name\n")
    repo.config(image_table(ns, ("api", "api"), ("web", "web")))

    assert pipeline(repo, docker=docker, reporter=reporter) == 0, repo.error()

    record = repo.run_record()
    assert record["stages"]["preflight"]["outputs"]["builder"] == "legacy"
    [warning] = record["stages"]["preflight"]["outputs"]["warnings"]
    assert "api/Dockerfile:1, web/Dockerfile:1" in warning
    assert reporter.console.file.getvalue().count("ignores the `# syntax=` line") == 1
    ref = images(repo)[f"{ns}/api"]["ref"]
    assert docker.run(ref, ["cat", "/name"], remove=True).strip() == "api"


def test_a_syntax_line_with_what_only_buildkit_builds_is_still_refused_by_the_legacy_builder(
    repo: Repo, ns: str, reporter, monkeypatch: pytest.MonkeyPatch, busybox_image: str
) -> None:
    docker = legacy_client(monkeypatch)
    repo.write("app/Dockerfile", f"{SYNTAX}FROM {busybox_image}\nRUN <<EOF\necho hi\nEOF\n")
    repo.config(image_table(ns, ("app", "app")))

    assert run(repo, "preflight", docker=docker, reporter=reporter) == 1
    error = repo.error()
    assert (error["code"], error["subject"]["line"]) == ("BUILDKIT_REQUIRED", 3)


@pytest.mark.parametrize("builder", ["legacy", "buildkit-client"])
def test_a_teams_repository_with_a_syntax_line_passes_preflight(
    repo: Repo, reporter, monkeypatch: pytest.MonkeyPatch, busybox_image: str, builder: str
) -> None:
    """services/api/Dockerfile starts with `# syntax=docker/dockerfile:1`; the manifests name
    registry.example/team/api:1.4.0; the image is configured by that name. BuildKit would pull
    the frontend image when it builds; preflight does not need it locally."""
    if builder == "legacy":
        docker = legacy_client(monkeypatch)
    else:
        client = buildkit_client()
        if client is None:
            pytest.skip("no Docker client that runs BuildKit itself (a client before 23.0) on PATH")
        monkeypatch.setenv("STAGEGATE_DOCKER", client)
        docker = docker_client()
    repo.write("services/api/Dockerfile", f"{SYNTAX}FROM {busybox_image}\nCOPY app.txt /app/\n")
    repo.write("services/api/app.txt", "api\n")
    repo.write("k8s/api.yaml", TEAM_DEPLOYMENT)
    # the configuration is init's: the image named as the manifests name it, nothing by hand
    init_repository(repo.root)
    table = tomllib.loads((repo.root / "pyproject.toml").read_text())["tool"]["stagegate"]
    assert [(i["name"], i["context"]) for i in table["images"]] == [
        ("registry.example/team/api", "services/api")
    ]
    assert table["deploy"]["manifests"] == "k8s"

    assert run(repo, "preflight", docker=docker, reporter=reporter) == 0, repo.error()

    outputs = repo.run_record()["stages"]["preflight"]["outputs"]
    assert outputs["builder"] == builder
    warnings = outputs.get("warnings", [])
    assert [w for w in warnings if "# syntax=" in w] == (
        [
            "builder: the legacy builder ignores the `# syntax=` line of services/api/Dockerfile:1 and builds "
            "with its own Dockerfile parser (BuildKit would pull that frontend image)"
        ]
        if builder == "legacy"
        else []
    )
