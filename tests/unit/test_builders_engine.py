"""The builders without an engine: the command the buildx builder runs (it fails at once against
a socket nothing listens on), and the builder preflight records, decided as the build decides it.
The builders on the real engine: tests/integration/test_builders_engine.py.
"""

from __future__ import annotations

import io
import secrets
from pathlib import Path

import pytest
from python_on_whales import DockerClient
from stagegate.builder import (
    BuildFailure,
    BuildRequest,
    BuildSecret,
    BuildxBuilder,
    LegacyBuilder,
    detect_builder,
)
from stagegate.errors import Code


def context(tmp_path: Path, dockerfile: str) -> Path:
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "Dockerfile").write_text(dockerfile)
    (tmp_path / "ctx" / "data").write_text(secrets.token_hex(8))
    return tmp_path / "ctx"


def request(ctx: Path, tags: list[str], build_args: dict[str, str] | None = None, **more) -> BuildRequest:
    return BuildRequest(
        ctx, ctx / "Dockerfile", tags, build_args or {}, {"dev.stagegate.test-build": "1"}, **more
    )


def test_the_buildx_builder_asks_for_a_loaded_image_with_plain_progress(tmp_path: Path) -> None:
    """On a client without the buildx plugin, or an engine that is not there, the command
    fails at once: what it was asked to run is the evidence."""
    ctx = context(tmp_path, "FROM scratch\n")
    docker = DockerClient(host=f"unix://{tmp_path / 'no-engine.sock'}")
    log = io.StringIO()
    wanted = request(
        ctx,
        ["t/app:sg-1", "t/app:latest"],
        build_args={"MODE": "release"},
        target="final",
        platforms=("linux/amd64",),
        secrets=(BuildSecret("token", env="SG_TOKEN"),),
        pull=True,
        no_cache=True,
    )
    with pytest.raises(BuildFailure) as failed:
        BuildxBuilder(docker).build(wanted, log)
    argv = failed.value.argv
    assert argv[argv.index("buildx") + 1] == "build"
    assert {"--load", "--pull", "--no-cache"} <= set(argv)
    assert "--push" not in argv
    for flag, value in [
        ("--progress", "plain"),
        ("--file", str(ctx / "Dockerfile")),
        ("--target", "final"),
        ("--platform", "linux/amd64"),
        ("--secret", "id=token,env=SG_TOKEN"),
        ("--build-arg", "MODE=release"),
        ("--label", "dev.stagegate.test-build=1"),
    ]:
        assert argv[argv.index(flag) + 1] == value, flag
    assert [argv[i + 1] for i, a in enumerate(argv) if a == "--tag"] == ["t/app:sg-1", "t/app:latest"]
    assert argv[-1] == str(ctx)
    assert failed.value.exit_code != 0
    assert log.getvalue().endswith(f"\n[exit code {failed.value.exit_code}]\n")
    # the CLI's own complaint was streamed into the log as it came
    assert failed.value.output.strip() and failed.value.output.strip().splitlines()[-1] in log.getvalue()


def test_a_buildx_build_without_pull_or_no_cache_asks_for_neither(tmp_path: Path) -> None:
    ctx = context(tmp_path, "FROM scratch\n")
    docker = DockerClient(host=f"unix://{tmp_path / 'no-engine.sock'}")
    with pytest.raises(BuildFailure) as failed:
        BuildxBuilder(docker).build(request(ctx, ["t/app:sg-1"]), io.StringIO())
    argv = failed.value.argv
    assert "--load" in argv and "--pull" not in argv and "--no-cache" not in argv and "--platform" not in argv


@pytest.mark.parametrize("client", ["20.10.24+dfsg1", "28.2.2"])
@pytest.mark.parametrize("buildkit_asked", [False, True])
def test_preflight_records_the_builder_the_one_decision_names(client: str, buildkit_asked: bool) -> None:
    """Preflight's builder check and the build's detection decide alike (builder_name): the
    name recorded is the builder the build makes; the legacy builder asked for BuildKit with
    DOCKER_BUILDKIT=1 is a missing tool instead."""
    from stagegate.builder import BUILDERS, builder_name
    from stagegate.dockerclient import DeferredDockerClient
    from stagegate.stages.preflight import check_builder

    docker = DeferredDockerClient({})
    outputs: dict = {"docker": {"client_version": client}}
    check = check_builder(docker, {"DOCKER_BUILDKIT": "1"} if buildkit_asked else {}, outputs)
    decided = builder_name(docker, client)
    if decided == LegacyBuilder.name and buildkit_asked:
        assert not check.ok and check.error is not None and check.error.code is Code.TOOL_MISSING
        assert "builder" not in outputs
        return
    assert check.ok and outputs["builder"] == decided
    assert type(detect_builder(docker, client)) is BUILDERS[decided]
