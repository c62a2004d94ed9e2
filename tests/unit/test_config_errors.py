"""What a user reads when [tool.stagegate] is refused: every refusal is CONFIG_INVALID with the
key path, a message naming the offending value and a hint saying what to write instead — for
unknown keys, missing keys, patterns, choices, bounds, wrong types, the file itself and
``${VAR}`` interpolation."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from stagegate.config import interpolate, load_config, unknown_profile
from stagegate.errors import Code, StagegateError

from tests.unit.test_config import make_repo

DEPLOY = '[tool.stagegate.deploy]\nmanifests = "k8s"\n'


def refused(root: Path, env: dict[str, str] | None = None, profile: str | None = None) -> StagegateError:
    with pytest.raises(StagegateError) as info:
        load_config(root, env=env or {}, profile=profile)
    assert info.value.code == Code.CONFIG_INVALID
    return info.value


def repo(tmp_path: Path, stagegate: str) -> Path:
    return make_repo(tmp_path, "[tool.stagegate]\n" + stagegate, {"k8s/a.yaml": "kind: ConfigMap\n"})


# -- unknown keys: a suggestion, or the keys the table knows -------------------------------------


@pytest.mark.parametrize(
    ("stagegate", "key", "known"),
    [
        (
            '[tool.stagegate.registry]\nurl = "r.example.com"\nzzz = 1\n',
            "registry.zzz",
            "cache, insecure, url",
        ),
        (
            "[tool.stagegate.e2e]\ncommand = ['x']\nzzz = 1\n",
            "e2e.zzz",
            "allow_no_tests, cache, command, inputs, port_forward, requirements, timeout",
        ),
        (
            DEPLOY + "zzz = 1\n",
            "deploy.zzz",
            "crashloop_restarts, external_images, kustomize_args, manifests, poll_interval, timeout, unschedulable_grace",
        ),
        (
            '[[tool.stagegate.images]]\nname = "a"\nsecrets = [{ id = "x", zzz = 1 }]\n',
            "images[0].secrets[0].zzz",
            "env, id, src",
        ),
        ("[tool.stagegate.profiles.ci]\nzzz = 1\n", "profiles.ci.zzz", "cluster, deploy, e2e"),
        (
            "[tool.stagegate.profiles.ci.deploy]\nzzz = 1\n",
            "profiles.ci.deploy.zzz",
            "crashloop_restarts, external_images, kustomize_args, manifests, poll_interval, timeout, unschedulable_grace",
        ),
        (
            "[tool.stagegate.profiles.ci.e2e]\nzzz = 1\n",
            "profiles.ci.e2e.zzz",
            "allow_no_tests, cache, command, inputs, port_forward, requirements, timeout",
        ),
    ],
)
def test_an_unknown_key_without_a_close_match_lists_the_tables_own_keys_sorted(
    tmp_path: Path, stagegate: str, key: str, known: str
) -> None:
    error = refused(repo(tmp_path, stagegate))
    assert error.subject["key"] == f"tool.stagegate.{key}"
    assert error.message == f"unknown key tool.stagegate.{key}"
    assert error.hint == f"known keys: {known}"


@pytest.mark.parametrize(
    ("stagegate", "key", "meant"),
    [
        (DEPLOY + "kustomise_args = []\n", "deploy.kustomise_args", "kustomize_args"),
        ("[tool.stagegate.cluster]\nlocal_regsitry = true\n", "cluster.local_regsitry", "local_registry"),
        ("[tool.stagegate.existing]\ncontexts = ['a']\nnamepsace = 'x'\n", "existing.namepsace", "namespace"),
        ("[tool.stagegate.profiles.ci.e2e]\ntimout = 5\n", "profiles.ci.e2e.timout", "timeout"),
    ],
)
def test_an_unknown_key_close_to_a_known_one_suggests_it(
    tmp_path: Path, stagegate: str, key: str, meant: str
) -> None:
    error = refused(repo(tmp_path, stagegate))
    assert error.subject["key"] == f"tool.stagegate.{key}"
    assert error.hint == f"did you mean {meant!r}?"


# -- missing keys, patterns, choices -----------------------------------------------------------


def test_a_missing_required_key_says_which_and_how_to_add_it(tmp_path: Path) -> None:
    error = refused(repo(tmp_path, "[tool.stagegate.registry]\ninsecure = true\n"))
    assert error.subject["key"] == "tool.stagegate.registry.url"
    assert error.message == "tool.stagegate.registry.url is required"
    assert error.hint == "add url = ... to the table"


@pytest.mark.parametrize(
    ("stagegate", "key", "said"),
    [
        ('[tool.stagegate.cluster]\nname = "Dev"\n', "cluster.name", "= 'Dev' is not a lowercase DNS name"),
        ('platform = "amd64"\n', "platform", "= 'amd64' is not an os/arch platform like 'linux/amd64'"),
        (
            '[[tool.stagegate.images]]\nname = "a"\nsmoke_entrypoint = "sh"\n',
            "images[0].smoke_entrypoint",
            """= 'sh' is not "image" or an absolute path of a program in the image""",
        ),
        (
            "[tool.stagegate.existing]\ncontexts = ['a']\nnamespace = 'Sg-{run}'\n",
            "existing.namespace",
            "= 'Sg-{run}' is not valid",
        ),
        (
            '[[tool.stagegate.images]]\nname = "a"\nsecrets = [{ id = "n p m" }]\n',
            "images[0].secrets[0].id",
            "= 'n p m' is not valid",
        ),
    ],
)
def test_a_value_not_matching_its_pattern_is_named_with_what_it_should_be(
    tmp_path: Path, stagegate: str, key: str, said: str
) -> None:
    error = refused(repo(tmp_path, stagegate))
    assert error.subject["key"] == f"tool.stagegate.{key}"
    assert error.message == f"tool.stagegate.{key} {said}"
    assert error.hint.startswith("use a value matching ^")


def test_an_invalid_image_name_gets_an_example_of_a_valid_one(tmp_path: Path) -> None:
    error = refused(repo(tmp_path, '[[tool.stagegate.images]]\nname = "Example/App"\n'))
    assert error.message == "tool.stagegate.images[0].name = 'Example/App' is not a valid image name"
    assert error.hint == "use a lowercase repository name without a tag, like 'example/api-server'"


def test_a_target_outside_the_choices_lists_them(tmp_path: Path) -> None:
    error = refused(repo(tmp_path, 'target = "kube"\n'))
    assert error.subject["key"] == "tool.stagegate.target"
    choices = "'auto', 'kind', 'docker' or 'existing'"
    assert error.message == f"tool.stagegate.target = 'kube' is not one of {choices}"
    assert error.hint == f"use one of {choices}"


# -- numbers: bounds and finiteness ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("setting", "key", "bound", "got"),
    [
        ("timeout = 0", "deploy.timeout", "> 0", "0"),
        ("poll_interval = -0.5", "deploy.poll_interval", "> 0", "-0.5"),
        ("crashloop_restarts = -1", "deploy.crashloop_restarts", ">= 0", "-1"),
        ("unschedulable_grace = -2", "deploy.unschedulable_grace", ">= 0", "-2"),
    ],
)
def test_a_number_out_of_bounds_names_the_bound_and_the_value(
    tmp_path: Path, setting: str, key: str, bound: str, got: str
) -> None:
    error = refused(repo(tmp_path, DEPLOY + setting + "\n"))
    name = key.rsplit(".", 1)[-1]
    assert error.subject["key"] == f"tool.stagegate.{key}"
    assert error.message == f"tool.stagegate.{key} must be {bound}, got {got}"
    assert error.hint == f"set {name} to a number {bound}"


def test_zero_is_allowed_where_the_bound_is_at_least_zero(tmp_path: Path) -> None:
    policy = load_config(
        repo(tmp_path, DEPLOY + "crashloop_restarts = 0\nunschedulable_grace = 0\n"), {}
    ).deploy.policy
    assert (policy.crashloop_restarts, policy.unschedulable_grace) == (0, 0)


@pytest.mark.parametrize("value", ["inf", "nan"])
def test_a_number_that_is_not_finite_is_refused_as_such(tmp_path: Path, value: str) -> None:
    error = refused(repo(tmp_path, "[tool.stagegate.e2e]\ncommand = ['x']\ntimeout = " + value + "\n"))
    assert error.subject["key"] == "tool.stagegate.e2e.timeout"
    assert error.message == f"tool.stagegate.e2e.timeout must be a finite number, got {value}"
    assert error.hint == "set timeout to a finite number"


@pytest.mark.parametrize(
    ("stagegate", "key", "name"),
    [
        ("[tool.stagegate.e2e]\ncommand = []\n", "e2e.command", "command"),
        ("[tool.stagegate.existing]\ncontexts = []\n", "existing.contexts", "contexts"),
    ],
)
def test_an_empty_list_that_needs_an_item_says_so(
    tmp_path: Path, stagegate: str, key: str, name: str
) -> None:
    error = refused(repo(tmp_path, stagegate))
    assert error.subject["key"] == f"tool.stagegate.{key}"
    assert error.message == f"tool.stagegate.{key} must not be empty"
    assert error.hint == f"give {name} at least one item"


def test_a_wrong_type_names_the_type_and_the_value_given(tmp_path: Path) -> None:
    error = refused(repo(tmp_path, "[tool.stagegate.cluster]\nlocal_registry = 'yes'\n"))
    assert error.subject["key"] == "tool.stagegate.cluster.local_registry"
    assert error.message == "tool.stagegate.cluster.local_registry has the wrong type: str 'yes'"
    assert error.hint == "it should be a valid boolean"


def test_values_are_not_coerced_from_strings(tmp_path: Path) -> None:
    error = refused(repo(tmp_path, DEPLOY + 'timeout = "30"\n'))
    assert error.message == "tool.stagegate.deploy.timeout has the wrong type: str '30'"


# -- the file and its section -------------------------------------------------------------------


def test_a_pyproject_that_is_a_directory_is_named_as_one(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").mkdir()
    error = refused(tmp_path)
    assert (error.subject["key"], error.subject["file"]) == ("tool.stagegate", "pyproject.toml")
    assert error.message == "pyproject.toml is a directory, not a file"
    assert error.hint == "replace pyproject.toml with the project's TOML file"


def test_a_pyproject_that_is_a_fifo_is_refused_without_being_opened(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pyproject.toml")
    assert refused(tmp_path).message == "pyproject.toml is a FIFO (named pipe), not a file"


def test_a_byte_order_mark_is_refused_with_how_to_save_the_file(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_bytes("\ufeff[tool.stagegate]\n".encode())
    error = refused(tmp_path)
    assert error.subject == {"key": "tool.stagegate", "file": "pyproject.toml"}
    assert error.message == "pyproject.toml starts with a UTF-8 byte order mark, which TOML does not allow"
    assert error.hint == "save pyproject.toml as UTF-8 without BOM"
    (tmp_path / "pyproject.toml").write_bytes(b"[tool.stagegate]\n")
    assert load_config(tmp_path, {}).images == {}


def test_no_pyproject_names_the_directory_it_looked_in(tmp_path: Path) -> None:
    root = tmp_path / "myrepo"
    root.mkdir()
    error = refused(root)
    assert error.message == "no pyproject.toml in myrepo/"
    assert error.hint == "run stagegate from a repository with a pyproject.toml"


def test_invalid_toml_quotes_the_parser_and_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.stagegate\n")
    error = refused(tmp_path)
    assert error.subject == {"key": "tool.stagegate", "file": "pyproject.toml"}
    assert error.message.startswith("pyproject.toml is not valid TOML: ")
    assert "line 1" in error.message
    assert error.hint == "fix the TOML syntax (UTF-8)"


def test_a_pyproject_without_the_section_says_what_to_add(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.ruff]\nline-length = 100\n")
    error = refused(tmp_path)
    assert error.subject == {"key": "tool.stagegate", "file": "pyproject.toml"}
    assert error.message == "pyproject.toml has no [tool.stagegate] table"
    assert error.hint == "add [tool.stagegate] with at least one [[tool.stagegate.images]] entry (see README)"


def test_a_section_that_is_not_a_table_is_refused_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool]\nstagegate = "yes"\n')
    error = refused(tmp_path)
    assert error.subject == {"key": "tool.stagegate", "file": "pyproject.toml"}
    assert error.message == "[tool.stagegate] must be a table"


def test_a_tool_key_that_is_not_a_table_is_a_config_error_not_a_crash(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("tool = 3\n")
    error = refused(tmp_path)
    assert error.message == "pyproject.toml has no [tool.stagegate] table"


def test_both_files_holding_the_table_name_the_one_to_remove(tmp_path: Path) -> None:
    for name in ("pyproject.toml", "stagegate.toml"):
        (tmp_path / name).write_text("[tool.stagegate]\n")
    error = refused(tmp_path)
    assert error.subject == {"key": "tool.stagegate", "file": "stagegate.toml"}
    assert error.hint == "keep one of them (stagegate reads pyproject.toml when it has the table)"


def test_a_stagegate_toml_without_the_table_leaves_the_pyproject_in_charge(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.stagegate]\nartifacts = "from-pyproject"\n')
    (tmp_path / "stagegate.toml").write_text("[tool.other]\nx = 1\n")
    assert load_config(tmp_path, {}).artifacts == tmp_path.resolve() / "from-pyproject"


# -- ${VAR} interpolation -------------------------------------------------------------------------


def interpolation_error(value: str, env: dict[str, str]) -> StagegateError:
    with pytest.raises(StagegateError) as info:
        interpolate(value, env, "k")
    assert info.value.code == Code.CONFIG_INVALID
    assert info.value.subject["key"] == "k"
    return info.value


@pytest.mark.parametrize(
    ("value", "env", "message", "hint"),
    [
        ("${TAG:?give a tag}", {}, "k: TAG: give a tag", "set TAG in the environment"),
        (
            "${TAG:?give a tag}",
            {"TAG": ""},
            "k: TAG: give a tag",
            "set TAG in the environment (to a non-empty value)",
        ),
        ("${TAG:?}", {}, "k: TAG: parameter null or not set", "set TAG in the environment"),
        (
            "${TAG:?}",
            {"TAG": ""},
            "k: TAG: parameter null or not set",
            "set TAG in the environment (to a non-empty value)",
        ),
        ("${TAG?}", {}, "k: TAG: parameter not set", "set TAG in the environment"),
        ("${TAG?say so}", {}, "k: TAG: say so", "set TAG in the environment"),
        (
            "${TAG}",
            {},
            "k uses ${TAG}, which is not set",
            "set TAG in the environment, or give a default: ${TAG:-value}",
        ),
    ],
)
def test_a_required_variable_that_is_missing_fails_as_the_shell_says(
    value: str, env: dict[str, str], message: str, hint: str
) -> None:
    error = interpolation_error(value, env)
    assert (error.message, error.hint, error.subject["variable"]) == (message, hint, "TAG")


@pytest.mark.parametrize(
    ("value", "env", "expected"),
    [
        ("${TAG:?need it}", {"TAG": "v1"}, "v1"),
        ("${TAG?need it}", {"TAG": ""}, ""),  # without ':' only an unset variable fails
        ("${TAG?need it}", {"TAG": "v2"}, "v2"),
        ("${TAG:-a-b}", {}, "a-b"),
        ("${TAG_2:-x}", {"TAG_2": "y"}, "y"),
        ("${_T}", {"_T": "z"}, "z"),
        ("${1X}", {}, "${1X}"),  # not a variable name: left as written
        ("a${A}b${B}c", {"A": "1", "B": "2"}, "a1b2c"),
    ],
)
def test_interpolation_of_set_variables_and_defaults(value: str, env: dict[str, str], expected: str) -> None:
    assert interpolate(value, env, "k") == expected


def test_labels_and_tags_are_interpolated_with_their_own_key_paths(tmp_path: Path) -> None:
    root = make_repo(
        tmp_path,
        '[tool.stagegate]\n[[tool.stagegate.images]]\nname = "a"\n'
        'labels = { team = "${TEAM:-qa}" }\ntags = ["v${VERSION}"]\n',
        {"Dockerfile": "FROM busybox\n"},
    )
    spec = load_config(root, {"VERSION": "1.2"}).images["a"]
    assert (spec.labels, spec.tags) == ({"team": "qa"}, ("v1.2",))
    assert refused(root).subject == {"key": "tool.stagegate.images[0].tags", "variable": "VERSION"}


# -- --profile naming no profile -------------------------------------------------------------------


def test_an_unknown_profile_suggests_a_close_one_or_lists_them_or_says_there_are_none() -> None:
    close = unknown_profile("dokcer", ["docker", "ci"])
    assert (close.code, close.subject) == (Code.CONFIG_INVALID, {"key": "--profile", "profile": "dokcer"})
    assert close.message == "--profile 'dokcer' names no profile of [tool.stagegate.profiles]"
    assert close.hint == "did you mean 'docker'?"
    assert unknown_profile("staging", iter(["docker", "ci"])).hint == "profiles: docker, ci"
    assert unknown_profile("staging", []).hint == "none is configured: add [tool.stagegate.profiles.NAME]"


def test_a_section_that_is_not_a_table_points_at_the_readme(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool]\nstagegate = [1, 2]\n")
    assert refused(tmp_path).hint == "see README for the format"


def test_a_profile_bringing_a_table_without_its_required_key_is_named_under_the_profile(
    tmp_path: Path,
) -> None:
    root = repo(tmp_path, "[tool.stagegate.profiles.ci.e2e]\nrequirements = ['pytest']\n")
    error = refused(root, profile="ci")
    assert error.subject == {"key": "tool.stagegate.profiles.ci.e2e.command"}
    assert error.message == "tool.stagegate.profiles.ci.e2e.command is required"
    assert error.hint == "add command = ... to the table"


def test_only_with_an_unknown_image_lists_the_configured_ones(tmp_path: Path) -> None:
    root = make_repo(
        tmp_path,
        '[tool.stagegate]\n[[tool.stagegate.images]]\nname = "t/api"\n[[tool.stagegate.images]]\nname = "t/web"\n',
        {"Dockerfile": "FROM busybox\n"},
    )
    with pytest.raises(StagegateError) as info:
        load_config(root, {}).select(["zzz"])
    assert info.value.message == "--only names 'zzz', which is not a configured image"
    assert info.value.hint == "configured: t/api, t/web"


# -- deploy.manifests: a string or a list, judged as what it is ------------------------------------


@pytest.mark.parametrize(
    ("manifests", "key", "message", "hint"),
    [
        (
            "[]",
            "deploy.manifests",
            "tool.stagegate.deploy.manifests must not be empty",
            "give manifests at least one item",
        ),
        (
            '["k8s", 3]',
            "deploy.manifests[1]",
            "tool.stagegate.deploy.manifests[1] has the wrong type: int 3",
            "it should be a valid string",
        ),
        (
            "3",
            "deploy.manifests",
            "tool.stagegate.deploy.manifests has the wrong type: int 3",
            "it should be a valid string",
        ),
    ],
)
def test_a_bad_manifests_value_is_named_by_its_own_key_path(
    tmp_path: Path, manifests: str, key: str, message: str, hint: str
) -> None:
    error = refused(repo(tmp_path, f"[tool.stagegate.deploy]\nmanifests = {manifests}\n"))
    assert error.subject == {"key": f"tool.stagegate.{key}"}
    assert (error.message, error.hint) == (message, hint)


def test_an_empty_manifests_list_of_a_profile_is_named_under_the_profile(tmp_path: Path) -> None:
    error = refused(repo(tmp_path, "[tool.stagegate.profiles.ci.deploy]\nmanifests = []\n"))
    assert error.subject == {"key": "tool.stagegate.profiles.ci.deploy.manifests"}
    assert error.message == "tool.stagegate.profiles.ci.deploy.manifests must not be empty"


def test_a_build_arg_named_like_a_union_member_keeps_its_name(tmp_path: Path) -> None:
    root = make_repo(
        tmp_path,
        '[tool.stagegate]\n[[tool.stagegate.images]]\nname = "a"\nbuild_args = { str = 1 }\n',
        {"Dockerfile": "FROM busybox\n"},
    )
    assert refused(root).subject == {"key": "tool.stagegate.images[0].build_args.str"}


def test_a_deploy_table_without_manifests_says_they_are_required(tmp_path: Path) -> None:
    error = refused(repo(tmp_path, "[tool.stagegate.deploy]\ntimeout = 5\n"))
    assert error.subject == {"key": "tool.stagegate.deploy.manifests"}
    assert (error.message, error.hint) == (
        "tool.stagegate.deploy.manifests is required",
        "add manifests = ... to the table",
    )


def test_an_empty_context_name_is_refused_as_empty_not_as_a_wrong_type(tmp_path: Path) -> None:
    error = refused(repo(tmp_path, '[tool.stagegate.existing]\ncontexts = ["ci", ""]\n'))
    assert error.subject == {"key": "tool.stagegate.existing.contexts[1]"}
    assert error.message == "tool.stagegate.existing.contexts[1] must not be an empty string"
    assert error.hint == "write a name, or remove the entry"
