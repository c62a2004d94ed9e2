"""The commands the builders run, and the small rules around them: which Docker clients run
BuildKit themselves, a secret's ``--secret`` value, an image's result in run.json, an image name
as a file name, and the registry a push needs.

The argv builders take a ``DockerClient`` and read only its configured command line
(constructing one runs nothing).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from python_on_whales import DockerClient
from stagegate.builder import (
    BuildRequest,
    BuildSecret,
    client_buildkit_argv,
    client_runs_buildkit,
    legacy_build_argv,
)
from stagegate.config import Config, RegistryConfig, load_config
from stagegate.errors import Code, StagegateError
from stagegate.imageinputs import safe_name
from stagegate.imagerecord import FAILED, NOT_STARTED, SKIPPED
from stagegate.stages.build import _past, require_registry
from stagegate.stages.build_image import ImageResult

ENGINE = "tcp://127.0.0.1:2375"  # never connected to: only the client's connection flag


def client() -> DockerClient:
    return DockerClient(host=ENGINE)


def full_request(**changes) -> BuildRequest:
    fields = dict(
        context=Path("/src/app"),
        dockerfile=Path("/src/app/Dockerfile.prod"),
        tags=["t/app:sg-0123456789abcdef", "t/app:latest"],
        build_args={"BASE": "t/base:sg-1", "MODE": "release"},
        labels={"dev.stagegate.image": "t/app"},
        target="final",
        platforms=("linux/amd64", "linux/arm64"),
        secrets=(BuildSecret("token", env="NPM_TOKEN"), BuildSecret("cert", src=Path("/run/cert.pem"))),
        secret_env={"NPM_TOKEN": "value-never-in-argv"},
        pull=True,
        no_cache=True,
    )
    fields.update(changes)
    return BuildRequest(**fields)


def as_text(argv) -> list[str]:
    return [str(a) for a in argv]


def head(docker: DockerClient) -> list[str]:
    return as_text(docker.client_config.docker_cmd)


# -- the legacy builder -------------------------------------------------------------------------


def test_the_legacy_build_passes_everything_the_request_asks_for() -> None:
    docker = client()
    assert as_text(legacy_build_argv(docker, full_request())) == [
        *head(docker),
        "build",
        "--quiet",
        "--force-rm",
        "--build-arg",
        "BASE=t/base:sg-1",
        "--build-arg",
        "MODE=release",
        "--label",
        "dev.stagegate.image=t/app",
        "--file",
        "/src/app/Dockerfile.prod",
        "--tag",
        "t/app:sg-0123456789abcdef",
        "--tag",
        "t/app:latest",
        "--target",
        "final",
        "--pull",
        "--no-cache",
        "/src/app",
    ]


def test_the_legacy_build_keeps_the_clients_connection_flags() -> None:
    argv = as_text(legacy_build_argv(client(), full_request()))
    assert argv[argv.index("--host") + 1] == ENGINE
    assert argv.index("--host") < argv.index("build")


def test_a_plain_request_adds_no_optional_flags() -> None:
    plain = BuildRequest(Path("/src/app"), Path("/src/app/Dockerfile"), ["t/app:sg-1"], {}, {})
    docker = client()
    assert as_text(legacy_build_argv(docker, plain)) == [
        *head(docker),
        "build",
        "--quiet",
        "--force-rm",
        "--file",
        "/src/app/Dockerfile",
        "--tag",
        "t/app:sg-1",
        "/src/app",
    ]
    argv = as_text(client_buildkit_argv(docker, plain, Path("/tmp/iid")))
    for flag in ("--target", "--pull", "--no-cache", "--platform", "--secret", "--build-arg", "--label"):
        assert flag not in argv


@pytest.mark.parametrize(("pull", "no_cache"), [(True, False), (False, True)])
def test_pull_and_no_cache_are_each_their_own_flag(pull: bool, no_cache: bool) -> None:
    argv = as_text(legacy_build_argv(client(), full_request(pull=pull, no_cache=no_cache, target=None)))
    assert ("--pull" in argv, "--no-cache" in argv, "--target" in argv) == (pull, no_cache, False)


def test_a_layer_cache_image_is_cache_from_and_buildkit_images_carry_inline_cache() -> None:
    docker = client()
    cached = full_request(cache_from=("reg.example/t/app:latest",), no_cache=False)
    legacy = as_text(legacy_build_argv(docker, cached))
    buildkit = as_text(client_buildkit_argv(docker, cached, Path("/tmp/iid")))
    for argv in (legacy, buildkit):
        assert argv[argv.index("--cache-from") + 1] == "reg.example/t/app:latest"
    # the legacy builder reads no inline cache metadata: BuildKit only
    assert "BUILDKIT_INLINE_CACHE=1" in buildkit and "BUILDKIT_INLINE_CACHE=1" not in legacy
    plain = full_request()
    for argv in (
        as_text(legacy_build_argv(docker, plain)),
        as_text(client_buildkit_argv(docker, plain, Path("/i"))),
    ):
        assert "--cache-from" not in argv and "BUILDKIT_INLINE_CACHE=1" not in argv


# -- the BuildKit of an older client ------------------------------------------------------------


def test_the_client_buildkit_build_passes_everything_and_secrets_only_by_name() -> None:
    docker = client()
    argv = as_text(client_buildkit_argv(docker, full_request(), Path("/tmp/scratch/iid")))
    assert argv == [
        *head(docker),
        "build",
        "--progress=plain",
        "--iidfile",
        "/tmp/scratch/iid",
        "--build-arg",
        "BASE=t/base:sg-1",
        "--build-arg",
        "MODE=release",
        "--label",
        "dev.stagegate.image=t/app",
        "--file",
        "/src/app/Dockerfile.prod",
        "--tag",
        "t/app:sg-0123456789abcdef",
        "--tag",
        "t/app:latest",
        "--secret",
        "id=token,env=NPM_TOKEN",
        "--secret",
        "id=cert,src=/run/cert.pem",
        "--platform",
        "linux/amd64,linux/arm64",
        "--target",
        "final",
        "--pull",
        "--no-cache",
        "/src/app",
    ]
    assert not any("value-never-in-argv" in a for a in argv)


def test_a_secret_is_read_from_its_env_var_when_it_names_one_else_from_its_file() -> None:
    assert BuildSecret("token", env="NPM_TOKEN").flag() == "id=token,env=NPM_TOKEN"
    assert BuildSecret("cert", src=Path("/run/cert.pem")).flag() == "id=cert,src=/run/cert.pem"


@pytest.mark.parametrize(
    ("version", "runs_buildkit"),
    [
        ("18.06.1-ce", False),
        ("18.09.0", True),
        ("19.03.3", True),
        ("20.10.24+dfsg1", True),
        ("v20.10.5", True),
        ("  20.10.24\n", True),
        ("22.06.0-beta.0", True),
        ("23.0.0", False),
        ("28.2.2", False),
        ("17.12.1-ce", False),
        ("", False),
        ("dev", False),
        ("20", False),
    ],
)
def test_clients_from_18_09_to_before_23_0_run_buildkit_themselves(version: str, runs_buildkit: bool) -> None:
    assert client_runs_buildkit(version) is runs_buildkit


# -- an image's result, its file name, the registry --------------------------------------------


def test_an_image_result_in_run_json_rounds_its_times_to_milliseconds() -> None:
    result = ImageResult(
        "t/app",
        "built",
        ref="t/app:sg-1",
        image_id="sha256:abc",
        input_hash="f00d",
        duration_s=1.23456,
        detail="fine",
        started_s=0.5004,
        finished_s=1.7356,
    )
    assert result.to_json() == {
        "status": "built",
        "ref": "t/app:sg-1",
        "image_id": "sha256:abc",
        "input_hash": "f00d",
        "duration_s": 1.235,
        "started_s": 0.5,
        "finished_s": 1.736,
        "detail": "fine",
    }


def test_an_image_that_never_started_has_no_times_in_run_json() -> None:
    assert ImageResult("t/app", "not started").to_json() == {
        "status": "not started",
        "ref": None,
        "image_id": None,
        "input_hash": None,
        "duration_s": 0.0,
        "started_s": None,
        "finished_s": None,
        "detail": "",
    }


def test_a_result_at_the_very_start_of_the_stage_keeps_its_zero_offset() -> None:
    as_json = ImageResult("t/app", "built", started_s=0.0, finished_s=0.0).to_json()
    assert (as_json["started_s"], as_json["finished_s"]) == (0.0, 0.0)


@pytest.mark.parametrize(
    ("name", "file_name"),
    [
        ("example/api-server", "example-api-server"),
        ("registry.local:5000/team/app_v1.2", "registry.local-5000-team-app_v1.2"),
        ("plain", "plain"),
    ],
)
def test_an_image_name_as_a_file_name_keeps_letters_digits_and_dash_underscore_dot(
    name: str, file_name: str
) -> None:
    assert safe_name(name) == file_name


def test_a_skipped_image_says_what_happened_to_the_image_it_needs() -> None:
    assert _past(FAILED) == "failed"
    assert _past(SKIPPED) == "was skipped"
    assert _past(NOT_STARTED) == "was not started"
    assert _past("unknown state") == "unknown state"


def config_of(tmp_path: Path, registry: str = "") -> Config:
    (tmp_path / "app").mkdir(parents=True, exist_ok=True)
    (tmp_path / "app" / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "pyproject.toml").write_text(
        f'[tool.stagegate]\n{registry}[[tool.stagegate.images]]\nname = "t/app"\ncontext = "app"\n'
    )
    return load_config(tmp_path, {})


def test_a_push_without_a_registry_is_a_config_error_naming_the_table(tmp_path: Path) -> None:
    with pytest.raises(StagegateError) as raised:
        require_registry(config_of(tmp_path), "--push")
    error = raised.value
    assert error.code == Code.CONFIG_INVALID
    assert error.message == "--push needs a registry, and [tool.stagegate.registry] is not configured"
    assert error.hint == (
        'add [tool.stagegate.registry] url = "registry.example.com/myproject" to pyproject.toml '
        "(and `docker login` to it)"
    )
    assert error.subject == {"key": "tool.stagegate.registry"}


def test_a_configured_registry_is_the_one_pushed_to(tmp_path: Path) -> None:
    config = config_of(tmp_path, '[tool.stagegate.registry]\nurl = "registry.example.com/team"\n')
    assert require_registry(config, "--push") == RegistryConfig("registry.example.com/team")
