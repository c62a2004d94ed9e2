"""Profiles: [tool.stagegate.profiles.<name>] overriding the deploy, e2e and cluster tables —
validated like the rest, applied by --profile or by the target's name, and kept for the whole run."""

from __future__ import annotations

from pathlib import Path

import pytest
from stagegate.config import load_config
from stagegate.errors import Code, StagegateError
from stagegate.options import parse_options
from stagegate.profiles import check_profile_fits, choose_profile

from tests.unit.test_config import config_error, make_repo

BASE = """\
[tool.stagegate]
[tool.stagegate.deploy]
manifests = "k8s"
external_images = ["busybox"]
timeout = 120
[tool.stagegate.e2e]
command = ["pytest", "e2e"]
requirements = ["pytest"]
"""
FILES = {"k8s/app.yaml": "kind: ConfigMap\n", "k8s-docker/app.yaml": "kind: ConfigMap\n"}


def repo(tmp_path: Path, profiles: str, files: dict[str, str] | None = None) -> Path:
    return make_repo(tmp_path, BASE + profiles, {**FILES, **(files or {})})


DOCKER = """\
[tool.stagegate.profiles.docker.deploy]
manifests = ["k8s-docker"]
timeout = 30
[tool.stagegate.profiles.docker.e2e]
command = ["pytest", "e2e", "-m", "not kind_only"]
"""


def test_a_profile_replaces_the_keys_it_sets_and_keeps_the_others(tmp_path: Path) -> None:
    root = repo(tmp_path, DOCKER)
    base = load_config(root, {})
    assert base.profiles == ("docker",) and base.profile is None
    assert base.deploy.manifests == (root / "k8s",)  # type: ignore[union-attr]
    docker = load_config(root, {}, profile="docker")
    assert docker.profile == "docker"
    assert docker.deploy.manifests == (root / "k8s-docker",)  # replaced, not appended  # type: ignore[union-attr]
    assert docker.deploy.policy.timeout == 30  # type: ignore[union-attr]
    assert docker.deploy.external_images == ("busybox",)  # kept  # type: ignore[union-attr]
    assert docker.e2e.command == ("pytest", "e2e", "-m", "not kind_only")  # type: ignore[union-attr]
    assert docker.e2e.requirements == ("pytest",)  # kept  # type: ignore[union-attr]


def test_an_unknown_key_in_a_profile_is_refused_with_its_path_and_a_suggestion(tmp_path: Path) -> None:
    error = config_error(repo(tmp_path, "[tool.stagegate.profiles.docker.deploy]\nmanifest = 'k8s'\n"))
    assert error.subject["key"] == "tool.stagegate.profiles.docker.deploy.manifest"
    assert "manifests" in error.hint
    table = config_error(repo(tmp_path / "t", "[tool.stagegate.profiles.docker.images]\nname = 'x'\n"))
    assert table.subject["key"] == "tool.stagegate.profiles.docker.images"
    assert "deploy" in table.hint and "e2e" in table.hint and "cluster" in table.hint


K8S = """\
[tool.stagegate.cluster]
name = "matrix"
node_image = "kindest/node:v1.36.1"
[tool.stagegate.profiles.k8s-1-35.cluster]
node_image = "kindest/node:v1.35.5"
[tool.stagegate.profiles.dual-stack.cluster]
kind_config = "ci/kind-dual.yaml"
"""


def test_a_profile_overrides_the_clusters_node_image_and_kind_config(tmp_path: Path) -> None:
    root = repo(tmp_path, K8S, {"ci/kind-dual.yaml": "kind: Cluster\n"})
    base = load_config(root, {})
    assert (base.cluster.node_image, base.cluster.kind_config) == ("kindest/node:v1.36.1", None)
    older = load_config(root, {}, profile="k8s-1-35")
    assert older.cluster.node_image == "kindest/node:v1.35.5"
    assert older.cluster.name == "matrix"  # kept from the base table
    dual = load_config(root, {}, profile="dual-stack")
    assert dual.cluster.kind_config == root / "ci" / "kind-dual.yaml"
    assert dual.cluster.node_image == "kindest/node:v1.36.1"  # not set by the profile: the base's
    assert dual.deploy.manifests == (root / "k8s",)  # a cluster-only profile leaves deploy alone  # type: ignore[union-attr]


def test_a_profile_may_set_only_the_node_image_and_kind_config_of_the_cluster(tmp_path: Path) -> None:
    # the cluster's name and local registry stay the base table's: teardown reads them from it
    for key, value in (("name", "'other'"), ("local_registry", "true")):
        root = repo(tmp_path / key, f"[tool.stagegate.profiles.ci.cluster]\n{key} = {value}\n")
        error = config_error(root)
        assert error.subject["key"] == f"tool.stagegate.profiles.ci.cluster.{key}"
        assert "kind_config and node_image" in error.message
        assert f"set {key} in [tool.stagegate.cluster]" in error.hint
    typo = config_error(repo(tmp_path / "t", "[tool.stagegate.profiles.ci.cluster]\nnode_imag = 'x'\n"))
    assert typo.subject["key"] == "tool.stagegate.profiles.ci.cluster.node_imag"
    assert typo.hint == "did you mean 'node_image'?"
    wrong_type = config_error(repo(tmp_path / "w", "[tool.stagegate.profiles.ci.cluster]\nnode_image = 1\n"))
    assert wrong_type.subject["key"] == "tool.stagegate.profiles.ci.cluster.node_image"


def test_a_profiles_kind_config_must_exist_in_the_repository_used_or_not(tmp_path: Path) -> None:
    missing = config_error(
        repo(tmp_path / "m", "[tool.stagegate.profiles.ci.cluster]\nkind_config = 'nope.yaml'\n")
    )
    assert missing.subject["key"] == "tool.stagegate.profiles.ci.cluster.kind_config"
    outside = config_error(
        repo(tmp_path / "o", "[tool.stagegate.profiles.ci.cluster]\nkind_config = '../kind.yaml'\n")
    )
    assert outside.subject["key"] == "tool.stagegate.profiles.ci.cluster.kind_config"
    # the base table's own kind_config is still named as the base's when no profile sets it
    base = config_error(repo(tmp_path / "b", "[tool.stagegate.cluster]\nkind_config = 'nope.yaml'\n"))
    assert base.subject["key"] == "tool.stagegate.cluster.kind_config"


def test_a_profiles_values_are_checked_as_the_tables_own(tmp_path: Path) -> None:
    bound = config_error(repo(tmp_path / "b", "[tool.stagegate.profiles.docker.deploy]\ntimeout = 0\n"))
    assert bound.subject["key"] == "tool.stagegate.profiles.docker.deploy.timeout"
    # a missing manifests dir fails every run, also one that does not use the profile
    missing = config_error(repo(tmp_path / "m", "[tool.stagegate.profiles.ci.deploy]\nmanifests = 'nope'\n"))
    assert missing.subject["key"] == "tool.stagegate.profiles.ci.deploy.manifests"
    flags = repo(tmp_path / "f", "[tool.stagegate.profiles.ci.deploy]\nkustomize_args = ['--bogus']\n")
    with pytest.raises(StagegateError) as info:
        load_config(flags, {}, profile="ci")
    assert info.value.subject["key"] == "tool.stagegate.profiles.ci.deploy.kustomize_args[0]"


def test_a_profile_bringing_a_table_the_base_lacks_must_complete_it(tmp_path: Path) -> None:
    root = make_repo(tmp_path, "[tool.stagegate]\n[tool.stagegate.profiles.ci.e2e]\ntimeout = 5\n")
    assert load_config(root, {}).e2e is None
    with pytest.raises(StagegateError) as info:
        load_config(root, {}, profile="ci")
    assert info.value.subject["key"] == "tool.stagegate.profiles.ci.e2e.command"
    assert "required" in info.value.message


def test_an_unknown_profile_name_is_config_invalid_naming_the_known_ones(tmp_path: Path) -> None:
    root = repo(tmp_path, DOCKER + "[tool.stagegate.profiles.ci.e2e]\ntimeout = 5\n")
    with pytest.raises(StagegateError) as info:
        load_config(root, {}, profile="dokcer")
    assert (info.value.code, info.value.subject["key"]) == (Code.CONFIG_INVALID, "--profile")
    assert "docker" in info.value.hint
    config = load_config(root, {})
    with pytest.raises(StagegateError) as chosen:
        choose_profile(config, parse_options(["--profile", "staging"]), {})
    assert "profiles: docker, ci" in chosen.value.hint


def no_kind(_: str) -> None:
    return None


def test_the_profile_named_like_the_target_applies_when_no_profile_is_asked_for(tmp_path: Path) -> None:
    config = load_config(repo(tmp_path, DOCKER), {})
    docker = choose_profile(config, parse_options(["--target", "docker"]), {}, which=no_kind)
    assert (docker.name, docker.target) == ("docker", "docker")
    assert docker.describe() == "profile docker (the target is docker)"
    auto = choose_profile(config, parse_options([]), {}, which=no_kind)  # auto: kind not on PATH
    assert auto.name == "docker"
    kind = choose_profile(config, parse_options(["--target", "kind"]), {}, which=no_kind)
    assert (kind.name, kind.target) == (None, "kind")  # no profile named kind: none applies
    asked = choose_profile(config, parse_options(["--target", "kind", "--profile", "docker"]), {})
    assert (asked.name, asked.reason) == ("docker", "--profile")


def test_a_later_stage_keeps_the_runs_profile_and_refuses_another(tmp_path: Path) -> None:
    config = load_config(repo(tmp_path, DOCKER), {})
    run = {"profile": {"name": "docker", "reason": "the target is docker", "target": "docker"}}
    kept = choose_profile(config, parse_options(["--target", "kind"]), run, which=no_kind)
    assert kept.name == "docker"  # the recorded choice, not a new one
    none_recorded = {"profile": {"name": None, "reason": "none", "target": "kind"}}
    assert choose_profile(config, parse_options([]), none_recorded, which=no_kind).name is None
    with pytest.raises(StagegateError) as info:
        choose_profile(config, parse_options(["--profile", "docker"]), none_recorded)
    assert info.value.code == Code.CONFIG_INVALID
    assert "started with no profile" in info.value.message
    assert "--profile docker" in info.value.hint


def test_the_cluster_stage_refuses_a_target_other_than_the_one_the_profile_was_chosen_for() -> None:
    profiles = ("docker", "kind")
    check_profile_fits({"name": "docker", "target": "docker"}, "docker", profiles)
    check_profile_fits({"name": "ci", "target": None}, "kind", profiles)  # chosen by --profile: any target
    check_profile_fits({"name": None, "target": "docker"}, "kind", ())  # no profile either way
    with pytest.raises(StagegateError) as info:
        check_profile_fits({"name": None, "target": "docker"}, "kind", profiles)
    assert "for the docker target" in info.value.message
    with pytest.raises(StagegateError):
        check_profile_fits({"name": "docker", "target": "docker"}, "kind", ("docker",))


def test_the_e2e_session_installs_the_requirements_of_the_runs_profile(tmp_path: Path, monkeypatch) -> None:
    import json

    from stagegate import cli

    monkeypatch.delenv("STAGEGATE_ARTIFACTS", raising=False)
    root = repo(tmp_path, "[tool.stagegate.profiles.docker.e2e]\nrequirements = ['pytest', 'httpx']\n")
    assert cli.e2e_requirements(root) == ["pytest"]  # no run yet: the base table
    (root / ".stagegate").mkdir()
    (root / ".stagegate" / "run.json").write_text(json.dumps({"profile": {"name": "docker"}}))
    assert cli.e2e_requirements(root) == ["pytest", "httpx"]
