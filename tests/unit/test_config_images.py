"""One [[tool.stagegate.images]] table resolved: build args (interpolated, from files, secret),
BuildKit secrets, tags, labels, the target stage, dependencies and what of it is hashed — with
the messages of each refusal, which name the key path, the offending value and what to do."""

from __future__ import annotations

from pathlib import Path

import pytest
from stagegate import redact
from stagegate.config import Config, artifacts_dir, load_config

from tests.unit.test_config import config_error, make_repo

MULTI_STAGE = "FROM busybox AS deps\nRUN true\nFROM busybox AS runtime\n"
KEY = "tool.stagegate.images[0]"


def repo(
    tmp_path: Path, options: str, files: dict[str, str] | None = None, dockerfile: str = MULTI_STAGE
) -> Path:
    return make_repo(
        tmp_path,
        '[tool.stagegate]\n[[tool.stagegate.images]]\nname = "t/app"\ncontext = "app"\n' + options,
        {"app/Dockerfile": dockerfile, **(files or {})},
    )


def spec(root: Path, env: dict[str, str] | None = None):
    return load_config(root, env or {}).images["t/app"]


@pytest.fixture(autouse=True)
def _fresh_secrets():
    redact.SECRETS.clear()
    yield
    redact.SECRETS.clear()


# -- what is hashed ---------------------------------------------------------------------------------


def test_the_hashed_options_are_labels_target_platforms_and_sorted_secret_ids(tmp_path: Path) -> None:
    root = repo(
        tmp_path,
        'target = "deps"\nplatforms = ["linux/amd64", "linux/arm64"]\nlabels = { team = "qa", tier = "1" }\n'
        'secrets = [{ id = "pip", env = "PIP_TOKEN" }, { id = "npm", src = "npmrc" }]\n',
        {"npmrc": "//registry/:_authToken=x\n"},
    )
    assert spec(root, {"PIP_TOKEN": "pip-secret-value"}).hashed_options() == {
        "label:team": "qa",
        "label:tier": "1",
        "target": "deps",
        "platforms": "linux/amd64,linux/arm64",
        "secrets": "npm,pip",
    }
    assert spec(repo(tmp_path / "plain", "")).hashed_options() == {}


def test_secret_sources_are_resolved_and_env_values_kept_for_the_build(tmp_path: Path) -> None:
    root = repo(
        tmp_path,
        'secrets = [{ id = "pip", env = "PIP_TOKEN" }, { id = "npm", src = "conf/npmrc" }]\n',
        {"conf/npmrc": "x\n"},
    )
    image = spec(root, {"PIP_TOKEN": "pip-secret-value", "OTHER": "y"})
    assert [(s.id, s.env, s.src) for s in image.secrets] == [
        ("pip", "PIP_TOKEN", None),
        ("npm", None, root.resolve() / "conf" / "npmrc"),
    ]
    assert dict(image.secret_env) == {"PIP_TOKEN": "pip-secret-value"}
    assert "pip-secret-value" not in repr(image)
    assert redact.redact("got pip-secret-value") == "got <redacted>"


# -- secrets refused ------------------------------------------------------------------------------------


def test_a_secret_with_neither_or_both_sources_needs_exactly_one(tmp_path: Path) -> None:
    for where, secret in (("neither", '{ id = "npm" }'), ("both", '{ id = "npm", env = "A", src = "f" }')):
        error = config_error(repo(tmp_path / where, f"secrets = [{secret}]\n"))
        assert error.subject["key"] == f"{KEY}.secrets[0]"
        assert error.message == f"{KEY}.secrets[0] needs exactly one of env or src"
        assert error.hint == 'e.g. { id = "npm", env = "NPM_TOKEN" }'


def test_a_secret_id_configured_twice_is_refused_at_the_second(tmp_path: Path) -> None:
    root = repo(tmp_path, 'secrets = [{ id = "npm", env = "A" }, { id = "npm", env = "B" }]\n')
    error = config_error(root, {"A": "a-value-1", "B": "b-value-1"})
    assert error.subject["key"] == f"{KEY}.secrets[1].id"
    assert error.message == "secret id 'npm' is configured twice"
    assert error.hint == "give every secret its own id"


def test_a_secrets_env_var_must_be_set(tmp_path: Path) -> None:
    error = config_error(repo(tmp_path, 'secrets = [{ id = "npm", env = "NPM_AUTH" }]\n'), {"OTHER": "x"})
    assert error.subject["key"] == f"{KEY}.secrets[0].env"
    assert error.message == f"{KEY}.secrets[0].env: NPM_AUTH is not set"
    assert error.hint == "set NPM_AUTH in the environment"
    assert [
        s.id
        for s in spec(repo(tmp_path / "empty", 'secrets = [{ id = "npm", env = "E" }]\n'), {"E": ""}).secrets
    ] == ["npm"]


def test_a_secret_file_must_be_a_file_inside_the_repository(tmp_path: Path) -> None:
    missing = config_error(repo(tmp_path / "m", 'secrets = [{ id = "npm", src = "npmrc" }]\n'))
    assert missing.subject["key"] == f"{KEY}.secrets[0].src"
    assert missing.message == f"{KEY}.secrets[0].src: file 'npmrc' does not exist"
    directory = config_error(repo(tmp_path / "d", 'secrets = [{ id = "npm", src = "app" }]\n'))
    assert directory.message == f"{KEY}.secrets[0].src: 'app' is a directory, not a regular file"


# -- build args ----------------------------------------------------------------------------------


def test_secret_build_args_are_the_listed_ones_and_those_named_like_secrets(tmp_path: Path) -> None:
    root = repo(
        tmp_path,
        'build_args = { PLAIN = "plain-value", DB_PASS = "db-pass-value", NPM_TOKEN = "npm-token-value", '
        'MIRROR = "mirror-value" }\nsecret_build_args = ["DB_PASS"]\n',
    )
    image = spec(root)
    assert image.secret_build_args == frozenset({"DB_PASS", "NPM_TOKEN"})
    assert redact.redact("db-pass-value npm-token-value plain-value") == "<redacted> <redacted> plain-value"
    assert redact.redact("DB_PASS=zz MIRROR=mm") == "DB_PASS=<redacted> MIRROR=mm"


def test_secret_build_args_must_name_build_args(tmp_path: Path) -> None:
    close = config_error(
        repo(tmp_path / "c", 'build_args = { DB_PASS = "x" }\nsecret_build_args = ["DB_PAS"]\n')
    )
    assert close.subject["key"] == f"{KEY}.secret_build_args[0]"
    assert close.message == "secret_build_args names 'DB_PAS', which is not one of t/app's build_args"
    assert close.hint == "did you mean 'DB_PASS'?"
    far = config_error(repo(tmp_path / "f", 'build_args = { A = "x" }\nsecret_build_args = ["A", "ZZZ"]\n'))
    assert far.subject["key"] == f"{KEY}.secret_build_args[1]"
    assert far.hint == "list names of keys of build_args"


def test_a_build_arg_file_loses_one_trailing_line_ending_only(tmp_path: Path) -> None:
    files = {"crlf": "v1\r\n", "two": "v2\n\n", "none": "v3", "inner": "a\nb\n"}
    root = repo(
        tmp_path,
        'build_args = { A = { file = "crlf" }, B = { file = "two" }, C = { file = "none" }, D = { file = "inner" } }\n',
        files,
    )
    assert dict(spec(root).build_args) == {"A": "v1", "B": "v2\n", "C": "v3", "D": "a\nb"}


def test_a_build_arg_file_that_is_missing_or_not_utf8_is_named(tmp_path: Path) -> None:
    missing = config_error(repo(tmp_path / "m", 'build_args = { V = { file = "nope" } }\n'))
    assert missing.subject["key"] == f"{KEY}.build_args.V.file"
    assert missing.message == f"{KEY}.build_args.V.file: file 'nope' does not exist"
    root = repo(tmp_path / "b", 'build_args = { V = { file = "bin" } }\n')
    (root / "bin").write_bytes(b"\xff\xfe")
    binary = config_error(root)
    assert binary.subject["key"] == f"{KEY}.build_args.V.file"
    assert binary.message.startswith("cannot read bin: ")
    assert binary.hint == "make it a readable UTF-8 file"


def test_a_secret_build_arg_from_interpolation_is_registered_with_its_value(tmp_path: Path) -> None:
    image = spec(
        repo(tmp_path, 'build_args = { API_KEY = "${KEY_FROM_ENV}" }\n'), {"KEY_FROM_ENV": "k3y-value-long"}
    )
    assert image.build_args["API_KEY"] == "k3y-value-long"
    assert redact.redact("k3y-value-long") == "<redacted>"


# -- tags, labels, target, dependencies -----------------------------------------------------------


@pytest.mark.parametrize("tag", ["v1.0", "_x", "A-b_c.d", "x" * 128])
def test_tags_docker_accepts(tmp_path: Path, tag: str) -> None:
    assert spec(repo(tmp_path, f'tags = ["{tag}"]\n')).tags == (tag,)


@pytest.mark.parametrize(
    ("tag", "env"), [("x" * 129, {}), ("sg-1", {}), ("${T}", {"T": ".x"}), ("${T}", {"T": "a b"})]
)
def test_tags_stagegate_may_not_set_are_named_with_their_position(
    tmp_path: Path, tag: str, env: dict[str, str]
) -> None:
    error = config_error(repo(tmp_path, f'tags = ["ok", "{tag}"]\n'), env)
    value = env.get("T", tag)
    assert error.subject["key"] == f"{KEY}.tags[1]"
    assert error.message == f"{KEY}.tags[1] = {value!r} is not a tag stagegate may set"
    assert (
        error.hint == "use letters, digits, '_', '.', '-' (at most 128, not starting with '.', '-' or 'sg-')"
    )


def test_labels_in_stagegates_namespace_are_refused_others_kept(tmp_path: Path) -> None:
    error = config_error(repo(tmp_path / "ns", 'labels = { "dev.stagegate.run" = "x" }\n'))
    assert error.subject["key"] == f"{KEY}.labels.dev.stagegate.run"
    assert error.message == "dev.stagegate.run is stagegate's own label"
    assert error.hint == "use another key"
    assert dict(spec(repo(tmp_path / "ok", 'labels = { "dev.stagegatex" = "x" }\n')).labels) == {
        "dev.stagegatex": "x"
    }


def test_a_target_that_is_not_a_stage_lists_the_stages(tmp_path: Path) -> None:
    error = config_error(repo(tmp_path / "a", 'target = "zzz"\n'))
    assert error.subject == {"key": f"{KEY}.target", "file": "app/Dockerfile"}
    assert error.message == f"{KEY}.target = 'zzz' is not a stage of app/Dockerfile"
    assert error.hint == "stages: deps, runtime"
    close = config_error(repo(tmp_path / "b", 'target = "runtim"\n'))
    assert close.hint == "did you mean 'runtime'?"
    unnamed = config_error(repo(tmp_path / "c", 'target = "x"\n', dockerfile="FROM busybox\n"))
    assert unnamed.hint == "stages: none (no FROM … AS name)"


def test_an_unknown_dependency_without_a_close_name_says_how_to_fix_it(tmp_path: Path) -> None:
    error = config_error(repo(tmp_path, 'depends_on = ["zzz"]\n'))
    assert error.subject["key"] == f"{KEY}.depends_on[0]"
    assert error.message == "t/app depends on 'zzz', which is not a configured image"
    assert error.hint == "configure it under [[tool.stagegate.images]] or remove it"


def test_an_unreadable_dockerfile_says_which_and_what_to_do(tmp_path: Path) -> None:
    error = config_error(repo(tmp_path, "", dockerfile="FROM\n"))
    assert error.message.startswith("cannot read app/Dockerfile: ")
    assert error.hint == "fix app/Dockerfile, or point dockerfile at another file"


def test_the_resolved_spec_carries_every_option(tmp_path: Path) -> None:
    root = repo(
        tmp_path,
        'pull = true\nno_cache = true\nsmoke = ["true"]\nsmoke_timeout = 3\nsmoke_entrypoint = "image"\n',
    )
    image = spec(root)
    assert (image.pull, image.no_cache, image.smoke, image.smoke_timeout, image.smoke_entrypoint) == (
        True,
        True,
        ("true",),
        3,
        "image",
    )
    assert (image.target, image.platforms, image.tags, image.secrets) == (None, (), (), ())


# -- artifacts_dir and relpath ----------------------------------------------------------------------


def test_artifacts_dir_never_opens_a_pyproject_that_is_not_a_file(tmp_path: Path) -> None:
    import os

    os.mkfifo(tmp_path / "pyproject.toml")
    assert artifacts_dir(tmp_path, {}) == tmp_path.resolve() / ".stagegate"


def test_artifacts_dir_accepts_a_directory_inside_the_repository(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.stagegate]\nartifacts = "build/../out"\n')
    assert artifacts_dir(tmp_path, {}) == tmp_path.resolve() / "out"


def test_relpath_of_a_path_outside_the_root_is_the_path_itself(tmp_path: Path) -> None:
    config = Config(root=tmp_path / "repo", artifacts=tmp_path / "repo" / ".stagegate", images={})
    assert config.relpath(tmp_path / "repo" / "a" / "b") == "a/b"
    assert config.relpath(Path("/etc/hosts")) == "/etc/hosts"


def test_a_dockerfile_that_is_a_directory_is_named_as_one(tmp_path: Path) -> None:
    error = config_error(repo(tmp_path, 'dockerfile = "app"\n'))
    assert error.subject == {"key": f"{KEY}.dockerfile", "path": "app"}
    assert error.message == f"{KEY}.dockerfile: 'app' is a directory, not a regular file"
    assert error.hint == "point dockerfile at a file in pyproject.toml"
    missing = config_error(repo(tmp_path / "m", 'dockerfile = "app/Containerfile"\n'))
    assert missing.message == f"{KEY}.dockerfile: file 'app/Containerfile' does not exist"


def test_an_image_depending_on_itself_is_told_to_remove_it(tmp_path: Path) -> None:
    error = config_error(repo(tmp_path, 'depends_on = ["t/app"]\n'))
    assert error.subject == {"key": f"{KEY}.depends_on[0]"}
    assert (error.message, error.hint) == ("t/app depends on itself", "remove it")


def test_an_empty_secret_src_is_the_repository_root_not_a_file(tmp_path: Path) -> None:
    error = config_error(repo(tmp_path, 'secrets = [{ id = "npm", src = "" }]\n'))
    assert error.subject == {"key": f"{KEY}.secrets[0].src", "path": ""}
    assert error.message == f"{KEY}.secrets[0].src: '' is a directory, not a regular file"
