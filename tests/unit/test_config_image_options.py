"""The per-image build options of [tool.stagegate.images]: target, platforms, secrets, tags,
labels, pull, no_cache and build args read from files — each accepted when right and refused,
with its key path, when wrong."""

from __future__ import annotations

from pathlib import Path

import pytest
from stagegate import redact
from stagegate.config import load_config

from tests.unit.test_config import config_error, make_repo

MULTI_STAGE = "FROM busybox AS deps\nRUN true\nFROM busybox AS runtime\nCOPY --from=deps /bin /x\n"


def repo(tmp_path: Path, options: str, files: dict[str, str] | None = None) -> Path:
    return make_repo(
        tmp_path,
        '[tool.stagegate]\n[[tool.stagegate.images]]\nname = "t/app"\ncontext = "app"\n' + options,
        {"app/Dockerfile": MULTI_STAGE, **(files or {})},
    )


@pytest.fixture(autouse=True)
def _fresh_registry():
    redact.SECRETS.clear()
    yield
    redact.SECRETS.clear()


def test_target_must_be_a_stage_of_the_dockerfile(tmp_path: Path) -> None:
    assert load_config(repo(tmp_path / "ok", 'target = "deps"\n'), {}).images["t/app"].target == "deps"
    error = config_error(repo(tmp_path / "bad", 'target = "dep"\n'))
    assert error.subject["key"] == "tool.stagegate.images[0].target"
    assert "deps" in error.hint  # did you mean


def test_the_target_stage_is_part_of_what_the_image_is_made_of(tmp_path: Path) -> None:
    deps = load_config(repo(tmp_path / "a", 'target = "deps"\n'), {}).images["t/app"]
    runtime = load_config(repo(tmp_path / "b", 'target = "runtime"\n'), {}).images["t/app"]
    assert deps.hashed_options() != runtime.hashed_options()


def test_a_secret_names_exactly_one_source_and_its_env_var_must_be_set(tmp_path: Path) -> None:
    spec = load_config(
        repo(tmp_path / "ok", 'secrets = [{ id = "npm", env = "NPM_AUTH" }]\n'),
        {"NPM_AUTH": "s3cret-npm-auth"},
    ).images["t/app"]
    assert [s.id for s in spec.secrets] == ["npm"]
    assert redact.redact("token s3cret-npm-auth") == "token <redacted>"  # registered at once
    assert "s3cret-npm-auth" not in str(spec.hashed_options())  # the id is hashed, never the value
    both = config_error(repo(tmp_path / "both", 'secrets = [{ id = "npm", env = "A", src = "f" }]\n'))
    assert both.subject["key"].startswith("tool.stagegate.images[0].secrets[0]")
    unset = config_error(repo(tmp_path / "unset", 'secrets = [{ id = "npm", env = "NPM_AUTH" }]\n'))
    assert "NPM_AUTH" in unset.message


def test_tags_may_not_take_stagegates_own_prefix_and_labels_not_its_namespace(tmp_path: Path) -> None:
    spec = load_config(repo(tmp_path / "ok", 'tags = ["dev"]\nlabels = { team = "qa" }\n'), {}).images[
        "t/app"
    ]
    assert "dev" in spec.tags and spec.labels["team"] == "qa"
    assert (
        config_error(repo(tmp_path / "sg", 'tags = ["sg-1234"]\n'))
        .subject["key"]
        .startswith("tool.stagegate.images[0].tags")
    )
    assert (
        config_error(repo(tmp_path / "ns", 'labels = { "dev.stagegate.owner" = "me" }\n'))
        .subject["key"]
        .startswith("tool.stagegate.images[0].labels")
    )


def test_a_build_arg_from_a_file_is_its_content_without_the_trailing_newline(tmp_path: Path) -> None:
    root = repo(
        tmp_path / "ok", 'build_args = { NODE_VERSION = { file = ".nvmrc" } }\n', {".nvmrc": "20.11.1\n"}
    )
    assert load_config(root, {}).images["t/app"].build_args["NODE_VERSION"] == "20.11.1"
    outside = config_error(repo(tmp_path / "out", 'build_args = { V = { file = "../elsewhere" } }\n'))
    assert outside.subject["key"].startswith("tool.stagegate.images[0].build_args")
    missing = config_error(repo(tmp_path / "missing", 'build_args = { V = { file = "nope" } }\n'))
    assert "nope" in missing.message


def test_pull_and_no_cache_are_booleans_and_change_no_hash(tmp_path: Path) -> None:
    plain = load_config(repo(tmp_path / "a", ""), {}).images["t/app"]
    fresh = load_config(repo(tmp_path / "b", "pull = true\nno_cache = true\n"), {}).images["t/app"]
    assert (fresh.pull, fresh.no_cache) == (True, True)
    assert plain.hashed_options() == fresh.hashed_options()
    assert (
        config_error(repo(tmp_path / "c", 'pull = "yes"\n')).subject["key"] == "tool.stagegate.images[0].pull"
    )


def test_platforms_are_validated(tmp_path: Path) -> None:
    assert load_config(repo(tmp_path / "ok", 'platforms = ["linux/amd64"]\n'), {}).images[
        "t/app"
    ].platforms == ("linux/amd64",)
    assert (
        config_error(repo(tmp_path / "bad", 'platforms = ["amd64 linux"]\n'))
        .subject["key"]
        .startswith("tool.stagegate.images[0].platforms")
    )


def test_smoke_entrypoint_is_image_or_an_absolute_path(tmp_path: Path) -> None:
    assert load_config(repo(tmp_path / "default", ""), {}).images["t/app"].smoke_entrypoint is None
    kept = load_config(repo(tmp_path / "image", 'smoke_entrypoint = "image"\n'), {}).images["t/app"]
    assert kept.smoke_entrypoint == "image"
    path = load_config(repo(tmp_path / "sh", 'smoke_entrypoint = "/bin/sh"\n'), {}).images["t/app"]
    assert path.smoke_entrypoint == "/bin/sh"
    error = config_error(repo(tmp_path / "bad", 'smoke_entrypoint = "sh"\n'))
    assert error.subject["key"] == "tool.stagegate.images[0].smoke_entrypoint"
    assert '"image" or an absolute path' in error.message
