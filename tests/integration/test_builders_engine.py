"""The builders themselves with the real Docker CLI and engine: the legacy builder's log and
image ID, the BuildKit of a client before 23.0 (the first such ``docker`` on PATH, or the one
``STAGEGATE_TEST_BUILDKIT_DOCKER`` names; skipped without one), and which builder is detected.
(The command the buildx builder runs, and preflight's record of the builder:
tests/unit/test_builders_engine.py.)
"""

from __future__ import annotations

import hashlib
import io
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from python_on_whales import DockerClient
from stagegate.builder import (
    BuildFailure,
    BuildSecret,
    BuildxBuilder,
    ClientBuildKitBuilder,
    LegacyBuilder,
    client_runs_buildkit,
    detect_builder,
)

from tests.conftest import (
    LABEL_LINE,
    TEST_PREFIX,
    buildkit_client,
    remove_failed_build_steps,
    remove_images_at_the_end,
)
from tests.unit.test_builders_engine import context, request

pytestmark = pytest.mark.docker

SECRET = "s3cr3t-of-the-builder-test"


@pytest.fixture
def name(docker: DockerClient) -> Iterator[str]:
    """An image name of this test; its tags removed at the end."""
    prefix = f"{TEST_PREFIX}-{secrets.token_hex(4)}"
    yield f"{prefix}/app"
    remove_images_at_the_end(prefix)
    remove_failed_build_steps(docker)  # the failing builds' step images


def test_the_legacy_builder_returns_the_image_id_and_logs_the_build(
    tmp_path: Path, docker: DockerClient, busybox_image: str, name: str
) -> None:
    ctx = context(tmp_path, f"FROM {busybox_image}\nARG MODE\nCOPY data /data\n")
    log = io.StringIO()
    tags = [f"{name}:sg-1", f"{name}:latest"]
    built = LegacyBuilder(docker).build(request(ctx, tags, build_args={"MODE": "x"}), log)
    assert built == docker.image.inspect(f"{name}:sg-1").id == docker.image.inspect(f"{name}:latest").id
    assert docker.image.inspect(built).config.labels["dev.stagegate.test-build"] == "1"
    assert log.getvalue() == (
        f"docker build (legacy builder) {ctx} -f {ctx / 'Dockerfile'}\n"
        f"Successfully built {built}\ntags: {name}:sg-1, {name}:latest\n"
    )


def test_a_failed_legacy_build_logs_its_command_output_and_exit_code(
    tmp_path: Path, docker: DockerClient, busybox_image: str, name: str
) -> None:
    ctx = context(tmp_path, f"FROM {busybox_image}\n{LABEL_LINE}RUN echo about to fail; exit 5\n")
    log = io.StringIO()
    with pytest.raises(BuildFailure) as failed:
        LegacyBuilder(docker).build(request(ctx, [f"{name}:sg-1"]), log)
    failure = failed.value
    assert failure.exit_code == 5
    assert failure.argv[1:4] == ["build", "--quiet", "--force-rm"] and failure.argv[-1] == str(ctx)
    assert "returned a non-zero code: 5" in failure.output and "about to fail" in failure.output
    text = log.getvalue()
    assert text.startswith(f"$ {' '.join(failure.argv)}\n")
    assert "about to fail" in text
    assert text.endswith("\n[exit code 5]\n")
    assert not docker.image.exists(f"{name}:sg-1")


@pytest.fixture
def old_client(busybox_image: str) -> DockerClient:
    found = buildkit_client()
    if found is None:
        pytest.skip("no Docker client that runs BuildKit itself (a client before 23.0) on PATH")
    return DockerClient(client_call=[found])


def test_the_client_buildkit_builder_builds_with_a_secret_from_the_environment_only(
    tmp_path: Path, docker: DockerClient, old_client: DockerClient, busybox_image: str, name: str
) -> None:
    ctx = context(
        tmp_path,
        f"FROM {busybox_image}\nCOPY data /data\n"
        "RUN --mount=type=secret,id=token,required=true "
        f"test \"$(sha256sum < /run/secrets/token | cut -d' ' -f1)\" = {hashlib.sha256(SECRET.encode()).hexdigest()}\n",
    )
    log = io.StringIO()
    wanted = request(
        ctx,
        [f"{name}:sg-1"],
        secrets=(BuildSecret("token", env="SG_B_TOKEN"),),
        secret_env={"SG_B_TOKEN": SECRET},
    )
    built = ClientBuildKitBuilder(old_client).build(wanted, log)
    assert built == docker.image.inspect(f"{name}:sg-1").id
    text = log.getvalue()
    first = text.splitlines()[0]
    assert first.startswith("$ DOCKER_BUILDKIT=1 ") and "--secret id=token,env=SG_B_TOKEN" in first
    assert "--progress=plain" in first
    assert "[internal] load build definition from Dockerfile\n" in text  # streamed, line by line
    assert SECRET not in text


def test_a_failed_client_buildkit_build_keeps_the_streamed_output(
    tmp_path: Path, old_client: DockerClient, busybox_image: str, name: str
) -> None:
    ctx = context(tmp_path, f"FROM {busybox_image}\nRUN echo about to fail; exit 6\n")
    log = io.StringIO()
    with pytest.raises(BuildFailure) as failed:
        ClientBuildKitBuilder(old_client).build(request(ctx, [f"{name}:sg-1"]), log)
    failure = failed.value
    assert "executor failed running" in failure.output and "exit code: 6" in failure.output
    assert failure.argv[1:3] == ["build", "--progress=plain"] and failure.argv[-1] == str(ctx)
    # the log: the command, then the output line by line as it came, then the exit code
    command = f"$ DOCKER_BUILDKIT=1 {' '.join(failure.argv)}\n"
    assert log.getvalue() == f"{command}{failure.output}\n[exit code {failure.exit_code}]\n"


def test_without_buildx_the_client_version_picks_the_builder(docker: DockerClient) -> None:
    if docker.buildx.is_installed():
        assert isinstance(detect_builder(docker), BuildxBuilder)
        return
    assert isinstance(detect_builder(docker, "20.10.24+dfsg1"), ClientBuildKitBuilder)
    assert isinstance(detect_builder(docker, "28.2.2"), LegacyBuilder)
    own = docker.version().client.version or ""
    expected = ClientBuildKitBuilder if client_runs_buildkit(own) else LegacyBuilder
    assert type(detect_builder(docker)) is expected


def test_an_old_client_without_buildx_is_detected_as_running_buildkit_itself(
    old_client: DockerClient,
) -> None:
    if old_client.buildx.is_installed():
        pytest.skip("this client has the buildx plugin")
    assert isinstance(detect_builder(old_client), ClientBuildKitBuilder)  # its own version asked
