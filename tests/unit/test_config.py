"""stagegate.config: [tool.stagegate] loaded, validated and resolved, in small repositories under tmp_path."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from stagegate.config import artifacts_dir, interpolate, load_config
from stagegate.errors import Code, StagegateError

BASE_AND_APP = """
[tool.stagegate]

[[tool.stagegate.images]]
name = "example/base"
context = "base"

[[tool.stagegate.images]]
name = "example/app"
"""
APP_CONTEXT = 'context = "app"\n'


def make_repo(root: Path, stagegate: str, files: dict[str, str] | None = None) -> Path:
    """A repository at ``root``: pyproject.toml with ``stagegate`` appended, plus ``files``."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text('[project]\nname = "demo"\n' + textwrap.dedent(stagegate))
    for relpath, text in (files or {}).items():
        path = root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def base_and_app(root: Path, app_dockerfile: str, extra: str = "", context: str | None = "app") -> Path:
    """Two images; ``app_dockerfile`` is the second one's Dockerfile, ``extra`` is appended to its table."""
    table = (f'context = "{context}"\n' if context is not None else "") + textwrap.dedent(extra)
    return make_repo(
        root,
        BASE_AND_APP + table,
        {"base/Dockerfile": "FROM busybox\n", "app/Dockerfile": app_dockerfile},
    )


def config_error(root: Path, env: dict[str, str] | None = None) -> StagegateError:
    with pytest.raises(StagegateError) as info:
        load_config(root, env=env or {})
    assert info.value.code == Code.CONFIG_INVALID
    return info.value


# -- a valid configuration ---------------------------------------------------------------


def test_valid_config_is_resolved(tmp_path: Path) -> None:
    root = base_and_app(tmp_path, "ARG BASE=example/base\nFROM ${BASE}\n")

    config = load_config(root, env={})

    assert list(config.images) == ["example/base", "example/app"]
    app = config.images["example/app"]
    assert app.context == root.resolve() / "app"
    assert app.dockerfile == root.resolve() / "app" / "Dockerfile"
    assert app.index == 1
    assert app.key == "tool.stagegate.images[1]"
    assert app.smoke is None
    assert [ref.ref for ref in app.parsed.base_refs({})] == ["example/base"]
    assert config.artifacts == root.resolve() / ".stagegate"
    assert config.relpath(app.dockerfile) == "app/Dockerfile"


def test_arg_default_in_from_infers_the_dependency(tmp_path: Path) -> None:
    config = load_config(base_and_app(tmp_path, "ARG BASE=example/base\nFROM ${BASE}\n"), env={})

    assert config.images["example/app"].depends_on == ("example/base",)
    assert config.images["example/base"].depends_on == ()


@pytest.mark.parametrize(
    ("dockerfile", "expected"),
    [
        ("FROM example/base:latest\n", ("example/base",)),
        ("FROM example/base@sha256:" + "a" * 64 + "\n", ("example/base",)),
        ("FROM example/base AS builder\nFROM builder\n", ("example/base",)),
        ("FROM busybox\n", ()),
        ("FROM example/basement\n", ()),
        ("FROM scratch\n", ()),
    ],
)
def test_from_line_inference(tmp_path: Path, dockerfile: str, expected: tuple[str, ...]) -> None:
    config = load_config(base_and_app(tmp_path, dockerfile), env={})

    assert config.images["example/app"].depends_on == expected


def test_build_arg_overriding_the_arg_default_changes_the_inferred_dependency(tmp_path: Path) -> None:
    root = base_and_app(
        tmp_path, "ARG BASE=example/base\nFROM ${BASE}\n", extra='build_args = { BASE = "busybox" }\n'
    )

    assert load_config(root, env={}).images["example/app"].depends_on == ()


def test_build_args_are_interpolated_before_inference(tmp_path: Path) -> None:
    root = base_and_app(
        tmp_path, "ARG BASE\nFROM ${BASE}\n", extra='build_args = { BASE = "${APP_BASE:-busybox}" }\n'
    )

    assert load_config(root, env={}).images["example/app"].build_args == {"BASE": "busybox"}
    assert load_config(root, env={}).images["example/app"].depends_on == ()
    with_env = load_config(root, env={"APP_BASE": "example/base"}).images["example/app"]
    assert with_env.build_args == {"BASE": "example/base"}
    assert with_env.depends_on == ("example/base",)


def test_arg_default_built_from_another_arg_infers_the_dependency(tmp_path: Path) -> None:
    root = base_and_app(tmp_path, "ARG ORG=example\nARG BASE=${ORG}/base\nFROM ${BASE}\n")

    assert load_config(root, env={}).images["example/app"].depends_on == ("example/base",)


def test_explicit_and_inferred_dependencies_are_merged_without_duplicates(tmp_path: Path) -> None:
    root = base_and_app(tmp_path, "FROM example/base\n", extra='depends_on = ["example/base"]\n')

    assert load_config(root, env={}).images["example/app"].depends_on == ("example/base",)


def test_explicit_depends_on_without_from_line(tmp_path: Path) -> None:
    root = base_and_app(tmp_path, "FROM busybox\n", extra='depends_on = ["example/base"]\n')

    assert load_config(root, env={}).images["example/app"].depends_on == ("example/base",)


def test_from_its_own_name_is_not_a_dependency(tmp_path: Path) -> None:
    root = base_and_app(tmp_path, "FROM example/app:previous\n")

    assert load_config(root, env={}).images["example/app"].depends_on == ()


def test_dockerfile_and_smoke_settings(tmp_path: Path) -> None:
    root = make_repo(
        tmp_path,
        """
        [tool.stagegate]
        [[tool.stagegate.images]]
        name = "registry.local:5000/team/app"
        context = "src"
        dockerfile = "docker/app.Dockerfile"
        smoke = ["app", "--version"]
        """,
        {"src/main.py": "", "docker/app.Dockerfile": "FROM busybox\n"},
    )

    image = load_config(root, env={}).images["registry.local:5000/team/app"]

    assert image.context == root.resolve() / "src"
    assert image.dockerfile == root.resolve() / "docker" / "app.Dockerfile"
    assert image.smoke == ("app", "--version")


# -- unknown keys and wrong types ------------------------------------------------------------


def test_unknown_top_level_key_suggests_the_right_one(tmp_path: Path) -> None:
    root = make_repo(tmp_path, "[tool.stagegate]\nimags = []\n")

    error = config_error(root)

    assert error.subject["key"] == "tool.stagegate.imags"
    assert "did you mean 'images'?" in error.hint


def test_unknown_key_without_a_close_match_lists_the_known_keys(tmp_path: Path) -> None:
    root = make_repo(tmp_path, "[tool.stagegate]\nzzz = 1\n")

    error = config_error(root)

    assert error.subject["key"] == "tool.stagegate.zzz"
    assert "artifacts" in error.hint and "images" in error.hint


def test_unknown_image_key_names_the_exact_key_path(tmp_path: Path) -> None:
    root = base_and_app(tmp_path, "FROM busybox\n", extra='dokerfile = "app/Dockerfile"\n')

    error = config_error(root)

    assert error.subject["key"] == "tool.stagegate.images[1].dokerfile"
    assert "did you mean 'dockerfile'?" in error.hint


@pytest.mark.parametrize(
    ("setting", "key"),
    [
        ("context = 3", "tool.stagegate.images[1].context"),
        ("dockerfile = 3", "tool.stagegate.images[1].dockerfile"),
        ("build_args = { X = 1 }", "tool.stagegate.images[1].build_args.X"),
        ('smoke = "python3 --version"', "tool.stagegate.images[1].smoke"),
        ('depends_on = "example/base"', "tool.stagegate.images[1].depends_on"),
    ],
)
def test_wrong_type_names_the_key(tmp_path: Path, setting: str, key: str) -> None:
    context = None if setting.startswith("context") else "app"
    root = base_and_app(tmp_path, "FROM busybox\n", extra=setting + "\n", context=context)

    error = config_error(root)

    assert error.subject["key"] == key
    assert key in error.message
    assert "wrong type" in error.message
    assert error.hint.startswith("it should be a valid ")


def test_wrong_type_of_a_top_level_key(tmp_path: Path) -> None:
    error = config_error(make_repo(tmp_path, "[tool.stagegate]\nartifacts = 3\n"))

    assert error.subject["key"] == "tool.stagegate.artifacts"


def test_missing_name(tmp_path: Path) -> None:
    root = make_repo(
        tmp_path, '[tool.stagegate]\n[[tool.stagegate.images]]\ncontext = "."\n', {"Dockerfile": "FROM x\n"}
    )

    error = config_error(root)

    assert error.subject["key"] == "tool.stagegate.images[0].name"
    assert "required" in error.message


@pytest.mark.parametrize(
    "name",
    ["Example/App", "example/App", "example/app:1.0", "example:latest", "example//app", "-app", "app-"],
)
def test_invalid_image_name(tmp_path: Path, name: str) -> None:
    root = make_repo(
        tmp_path,
        f'[tool.stagegate]\n[[tool.stagegate.images]]\nname = "{name}"\n',
        {"Dockerfile": "FROM x\n"},
    )

    error = config_error(root)

    assert error.subject["key"] == "tool.stagegate.images[0].name"
    assert repr(name) in error.message


@pytest.mark.parametrize("name", ["app", "a_b", "a__b", "a.b", "a--b", "localhost:5000/a/b"])
def test_valid_image_names(tmp_path: Path, name: str) -> None:
    root = make_repo(
        tmp_path,
        f'[tool.stagegate]\n[[tool.stagegate.images]]\nname = "{name}"\n',
        {"Dockerfile": "FROM x\n"},
    )

    assert list(load_config(root, env={}).images) == [name]


# -- paths -----------------------------------------------------------------------------------


def test_missing_dockerfile(tmp_path: Path) -> None:
    root = base_and_app(tmp_path, "FROM busybox\n", extra='dockerfile = "app/Containerfile"\n')

    error = config_error(root)

    assert error.subject["key"] == "tool.stagegate.images[1].dockerfile"
    assert "does not exist" in error.message
    assert error.subject["path"] == "app/Containerfile"


def test_missing_default_dockerfile_in_context(tmp_path: Path) -> None:
    root = make_repo(
        tmp_path, BASE_AND_APP + APP_CONTEXT, {"base/Dockerfile": "FROM busybox\n", "app/main.py": ""}
    )

    error = config_error(root)

    assert error.subject["key"] == "tool.stagegate.images[1].dockerfile"


def test_missing_context_dir(tmp_path: Path) -> None:
    root = make_repo(tmp_path, BASE_AND_APP + APP_CONTEXT, {"base/Dockerfile": "FROM busybox\n"})

    error = config_error(root)

    assert error.subject["key"] == "tool.stagegate.images[1].context"
    assert "does not exist" in error.message


def test_context_that_is_a_file(tmp_path: Path) -> None:
    root = make_repo(
        tmp_path, BASE_AND_APP + APP_CONTEXT, {"base/Dockerfile": "FROM busybox\n", "app": "not a dir"}
    )

    assert config_error(root).subject["key"] == "tool.stagegate.images[1].context"


def test_unreadable_dockerfile_syntax(tmp_path: Path) -> None:
    root = base_and_app(tmp_path, "FROM busybox\n&& echo hi\n")

    error = config_error(root)

    assert error.subject["key"] == "tool.stagegate.images[1].dockerfile"
    assert error.subject["file"] == "app/Dockerfile"


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory next to the repository (``tmp_path/repo``), with a Dockerfile in it."""
    path = tmp_path / "elsewhere"
    path.mkdir()
    (path / "Dockerfile").write_text("FROM busybox\n")
    return path


@pytest.mark.parametrize("how", ["relative", "absolute", "symlink"])
@pytest.mark.parametrize(
    ("setting", "key"),
    [
        ('context = "{path}"', "tool.stagegate.images[1].context"),
        ('dockerfile = "{path}/Dockerfile"', "tool.stagegate.images[1].dockerfile"),
    ],
)
def test_image_paths_leaving_the_repo(
    tmp_path: Path, outside: Path, how: str, setting: str, key: str
) -> None:
    root = tmp_path / "repo"
    path = {"relative": "../elsewhere", "absolute": str(outside), "symlink": "link"}[how]
    context = None if setting.startswith("context") else "app"
    base_and_app(root, "FROM busybox\n", extra=setting.format(path=path) + "\n", context=context)
    (root / "link").symlink_to(outside)

    error = config_error(root)

    assert error.subject["key"] == key
    assert "leaves the repository" in error.message


@pytest.mark.parametrize("how", ["relative", "absolute", "symlink"])
def test_artifacts_leaving_the_repo(tmp_path: Path, outside: Path, how: str) -> None:
    root = tmp_path / "repo"
    path = {"relative": "../elsewhere", "absolute": str(outside), "symlink": "link"}[how]
    make_repo(root, f'[tool.stagegate]\nartifacts = "{path}"\n')
    (root / "link").symlink_to(outside)

    error = config_error(root)

    assert error.subject["key"] == "tool.stagegate.artifacts"
    assert "leaves the repository" in error.message


def test_absolute_path_inside_the_repo_is_accepted(tmp_path: Path) -> None:
    root = base_and_app(tmp_path, "FROM busybox\n", extra=f'dockerfile = "{tmp_path}/app/Dockerfile"\n')

    assert load_config(root, env={}).images["example/app"].dockerfile == tmp_path.resolve() / "app/Dockerfile"


# -- dependencies ----------------------------------------------------------------------------


def test_depends_on_unknown_image(tmp_path: Path) -> None:
    root = base_and_app(tmp_path, "FROM busybox\n", extra='depends_on = ["example/bsae"]\n')

    error = config_error(root)

    assert error.subject["key"] == "tool.stagegate.images[1].depends_on[0]"
    assert "'example/bsae'" in error.message
    assert "did you mean 'example/base'?" in error.hint


def test_depends_on_itself(tmp_path: Path) -> None:
    root = base_and_app(tmp_path, "FROM busybox\n", extra='depends_on = ["example/base", "example/app"]\n')

    error = config_error(root)

    assert error.subject["key"] == "tool.stagegate.images[1].depends_on[1]"
    assert "itself" in error.message


def test_cycle_between_depends_on_and_from_line(tmp_path: Path) -> None:
    root = make_repo(
        tmp_path,
        """
        [tool.stagegate]
        [[tool.stagegate.images]]
        name = "example/base"
        context = "base"
        depends_on = ["example/app"]

        [[tool.stagegate.images]]
        name = "example/app"
        context = "app"
        """,
        {"base/Dockerfile": "FROM busybox\n", "app/Dockerfile": "ARG BASE=example/base\nFROM ${BASE}\n"},
    )

    error = config_error(root)

    assert "example/base" in error.message and "example/app" in error.message
    assert error.subject["cycle"] == ["example/base", "example/app", "example/base"]
    assert error.subject["key"] == "tool.stagegate.images[0].depends_on"


def test_duplicate_image_names(tmp_path: Path) -> None:
    root = make_repo(
        tmp_path,
        """
        [tool.stagegate]
        [[tool.stagegate.images]]
        name = "example/app"
        [[tool.stagegate.images]]
        name = "example/other"
        [[tool.stagegate.images]]
        name = "example/app"
        """,
        {"Dockerfile": "FROM busybox\n"},
    )

    error = config_error(root)

    assert error.subject["key"] == "tool.stagegate.images[2].name"
    assert "images[0]" in error.message and "images[2]" in error.message


# -- interpolation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "env", "expected"),
    [
        ("${VAR:-fallback}", {}, "fallback"),
        ("${VAR:-fallback}", {"VAR": ""}, "fallback"),
        ("${VAR:-fallback}", {"VAR": "set"}, "set"),
        ("${VAR-fallback}", {}, "fallback"),
        ("${VAR-fallback}", {"VAR": ""}, ""),
        ("${VAR-fallback}", {"VAR": "set"}, "set"),
        ("${VAR}", {"VAR": "set"}, "set"),
        ("${VAR}", {"VAR": ""}, ""),
        ("${VAR:-}", {}, ""),
        ("pre-${A}-${B:-b}-post", {"A": "a"}, "pre-a-b-post"),
        ("$$VAR", {}, "$VAR"),
        ("$${VAR}", {}, "${VAR}"),
        ("$$$${VAR}", {}, "$${VAR}"),
        ("$VAR", {"VAR": "set"}, "$VAR"),
        ("no variables", {}, "no variables"),
    ],
)
def test_interpolate(value: str, env: dict[str, str], expected: str) -> None:
    assert interpolate(value, env, "some.key") == expected


def test_interpolate_unset_variable_names_key_and_variable() -> None:
    with pytest.raises(StagegateError) as info:
        interpolate("x-${MISSING}", {"OTHER": "1"}, "tool.stagegate.images[0].build_args.X")

    error = info.value
    assert error.code == Code.CONFIG_INVALID
    assert error.subject["key"] == "tool.stagegate.images[0].build_args.X"
    assert error.subject["variable"] == "MISSING"
    assert "MISSING" in error.message
    assert "MISSING" in error.hint


def test_unset_variable_in_build_args(tmp_path: Path) -> None:
    root = base_and_app(tmp_path, "FROM busybox\n", extra='build_args = { TAG = "${APP_TAG}" }\n')

    error = config_error(root)

    assert error.subject["key"] == "tool.stagegate.images[1].build_args.TAG"
    assert error.subject["variable"] == "APP_TAG"
    assert load_config(root, env={"APP_TAG": "1.0"}).images["example/app"].build_args == {"TAG": "1.0"}


def test_load_config_reads_the_given_env_not_os_environ(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("APP_TAG", "from-os-environ")
    root = base_and_app(tmp_path, "FROM busybox\n", extra='build_args = { TAG = "${APP_TAG:-default}" }\n')

    assert load_config(root, env={}).images["example/app"].build_args == {"TAG": "default"}


# -- artifacts -------------------------------------------------------------------------------


def test_artifacts_setting_and_env_override(tmp_path: Path) -> None:
    root = make_repo(tmp_path, '[tool.stagegate]\nartifacts = "out/stagegate"\n')

    assert load_config(root, env={}).artifacts == root.resolve() / "out" / "stagegate"
    assert artifacts_dir(root, env={}) == root.resolve() / "out" / "stagegate"
    env = {"STAGEGATE_ARTIFACTS": "custom"}
    assert load_config(root, env=env).artifacts == root.resolve() / "custom"
    assert artifacts_dir(root, env=env) == root.resolve() / "custom"


def test_empty_artifacts_env_is_ignored(tmp_path: Path) -> None:
    root = make_repo(tmp_path, '[tool.stagegate]\nartifacts = "out"\n')

    assert load_config(root, env={"STAGEGATE_ARTIFACTS": ""}).artifacts == root.resolve() / "out"
    assert artifacts_dir(root, env={"STAGEGATE_ARTIFACTS": ""}) == root.resolve() / "out"


@pytest.mark.parametrize(
    "pyproject",
    [
        None,
        "this is [not toml",
        '[project]\nname = "x"\n',
        "[tool]\nstagegate = 3\n",
        "tool = 3\n",
        "[tool.stagegate]\nartifacts = 3\n",
        '[tool.stagegate]\nartifacts = "../outside"\n',
        '[tool.stagegate]\nartifacts = "/"\n',
    ],
)
def test_artifacts_dir_falls_back_to_the_default_when_the_config_is_broken(
    tmp_path: Path, pyproject: str | None
) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    if pyproject is not None:
        (root / "pyproject.toml").write_text(pyproject)

    assert artifacts_dir(root, env={}) == root.resolve() / ".stagegate"


def test_artifacts_dir_reads_artifacts_even_when_images_are_broken(tmp_path: Path) -> None:
    root = make_repo(tmp_path, '[tool.stagegate]\nartifacts = "out"\nimags = 1\n')

    config_error(root)
    assert artifacts_dir(root, env={}) == root.resolve() / "out"
    assert artifacts_dir(root, env={"STAGEGATE_ARTIFACTS": "env-out"}) == root.resolve() / "env-out"


# -- the file and the section ----------------------------------------------------------------


def test_no_pyproject(tmp_path: Path) -> None:
    error = config_error(tmp_path)

    assert error.subject["key"] == "tool.stagegate"
    assert "pyproject.toml" in error.message


def test_no_stagegate_section(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n[tool.ruff]\nline-length = 100\n')

    error = config_error(tmp_path)

    assert error.subject["key"] == "tool.stagegate"
    assert "[tool.stagegate]" in error.message


def test_invalid_toml(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.stagegate\nartifacts = 1\n")

    error = config_error(tmp_path)

    assert error.subject["key"] == "tool.stagegate"
    assert "not valid TOML" in error.message


def test_stagegate_that_is_not_a_table(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool]\nstagegate = 3\n")

    assert config_error(tmp_path).subject["key"] == "tool.stagegate"


def test_empty_section_has_no_images(tmp_path: Path) -> None:
    config = load_config(make_repo(tmp_path, "[tool.stagegate]\n"), env={})

    assert dict(config.images) == {}


def test_pyproject_that_is_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_bytes(b'[tool.stagegate]\nartifacts = "\xff"\n')

    assert config_error(tmp_path).subject["key"] == "tool.stagegate"


def test_artifacts_dir_with_a_pyproject_that_is_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_bytes(b'[tool.stagegate]\nartifacts = "\xff"\n')

    assert artifacts_dir(tmp_path, env={}) == tmp_path.resolve() / ".stagegate"


def test_from_without_an_image_is_config_invalid(tmp_path: Path) -> None:
    root = base_and_app(tmp_path, "FROM\nRUN true\n")

    error = config_error(root)

    assert error.subject["key"] == "tool.stagegate.images[1].dockerfile"


# -- Config.select -----------------------------------------------------------------------------


@pytest.fixture
def three_images(tmp_path: Path) -> Path:
    return make_repo(
        tmp_path,
        BASE_AND_APP
        + APP_CONTEXT
        + """
        [[tool.stagegate.images]]
        name = "example/tool"
        context = "tool"
        """,
        {
            "base/Dockerfile": "FROM busybox\n",
            "app/Dockerfile": "FROM example/base\n",
            "tool/Dockerfile": "FROM busybox\n",
        },
    )


@pytest.mark.parametrize(
    ("only", "expected"),
    [
        ([], ["example/base", "example/app", "example/tool"]),
        (["example/app"], ["example/base", "example/app"]),
        (["example/base"], ["example/base"]),
        (["example/tool"], ["example/tool"]),
        (["example/tool", "example/app"], ["example/base", "example/app", "example/tool"]),
    ],
)
def test_select_pulls_in_dependencies_in_config_order(
    three_images: Path, only: list[str], expected: list[str]
) -> None:
    assert load_config(three_images, env={}).select(only) == expected


def test_select_unknown_name_suggests_a_configured_one(three_images: Path) -> None:
    config = load_config(three_images, env={})

    with pytest.raises(StagegateError) as info:
        config.select(["example/ap"])

    error = info.value
    assert error.code == Code.CONFIG_INVALID
    assert error.subject["key"] == "--only"
    assert error.subject["image"] == "example/ap"
    assert "did you mean 'example/app'?" in error.hint


def test_select_unknown_name_without_a_close_match_lists_the_images(three_images: Path) -> None:
    with pytest.raises(StagegateError) as info:
        load_config(three_images, env={}).select(["zzz"])

    assert "example/base" in info.value.hint and "example/tool" in info.value.hint


def test_cluster_deploy_and_e2e_tables_are_resolved(tmp_path: Path) -> None:
    root = make_repo(
        tmp_path,
        '[tool.stagegate]\ntarget = "kind"\n'
        '[tool.stagegate.cluster]\nname = "dev"\nkind_config = "kind.yaml"\nnode_image = "kindest/node:v1.32.2"\n'
        '[tool.stagegate.deploy]\nmanifests = "k8s"\ntimeout = 60\npoll_interval = 0.5\n'
        "crashloop_restarts = 2\nunschedulable_grace = 5\n"
        '[tool.stagegate.e2e]\ncommand = ["pytest", "e2e"]\nrequirements = ["pytest>=8"]\ntimeout = 90\n',
        files={"kind.yaml": "kind: Cluster\n", "k8s/app.yaml": "kind: Namespace\n"},
    )
    config = load_config(root, env={})
    assert config.target == "kind"
    assert (config.cluster.name, config.cluster.kind_config, config.cluster.node_image) == (
        "dev",
        root.resolve() / "kind.yaml",
        "kindest/node:v1.32.2",
    )
    policy = config.deploy.policy
    assert (policy.timeout, policy.poll_interval, policy.crashloop_restarts, policy.unschedulable_grace) == (
        60,
        0.5,
        2,
        5,
    )
    assert (config.e2e.command, config.e2e.requirements, config.e2e.timeout) == (
        ("pytest", "e2e"),
        ("pytest>=8",),
        90,
    )
