"""The tables of [tool.stagegate] as the run uses them: deploy (manifest sources and globs,
kustomize_args), cluster, e2e, registry, existing, profiles' overrides and the artifacts dir —
their defaults, what is passed through, and what is refused (with its key path and hint)."""

from __future__ import annotations

from pathlib import Path

import pytest
from stagegate.config import ExistingConfig, RegistryConfig, load_config
from stagegate.errors import Code, StagegateError

from tests.unit.test_config import make_repo

FILES = {
    "k8s/a.yaml": "kind: ConfigMap\n",
    "k8s/b.yaml": "kind: ConfigMap\n",
    "other/c.yaml": "kind: ConfigMap\n",
}


def repo(tmp_path: Path, stagegate: str, files: dict[str, str] | None = None) -> Path:
    return make_repo(tmp_path, "[tool.stagegate]\n" + stagegate, {**FILES, **(files or {})})


def refused(root: Path, env: dict[str, str] | None = None, profile: str | None = None) -> StagegateError:
    with pytest.raises(StagegateError) as info:
        load_config(root, env=env or {}, profile=profile)
    assert info.value.code == Code.CONFIG_INVALID
    return info.value


def deploy(args: list[str]) -> str:
    quoted = ", ".join(f'"{arg}"' for arg in args)
    return f'[tool.stagegate.deploy]\nmanifests = "k8s"\nkustomize_args = [{quoted}]\n'


# -- the defaults of each table --------------------------------------------------------------


def test_an_empty_section_has_the_documented_defaults(tmp_path: Path) -> None:
    config = load_config(repo(tmp_path, ""), {})
    assert (config.target, config.platform, config.profile, config.profiles) == ("auto", None, None, ())
    assert (config.deploy, config.e2e, config.registry, config.existing) == (None, None, None, None)
    cluster = config.cluster
    assert (cluster.name, cluster.kind_config, cluster.node_image) == ("stagegate", None, None)
    assert (cluster.local_registry, cluster.local_registry_image) == (False, "registry:2")
    assert config.artifacts == tmp_path.resolve() / ".stagegate"


def test_deploy_and_e2e_defaults(tmp_path: Path) -> None:
    config = load_config(
        repo(tmp_path, '[tool.stagegate.deploy]\nmanifests = "k8s"\n[tool.stagegate.e2e]\ncommand = ["t"]\n'),
        {},
    )
    policy = config.deploy.policy
    assert (policy.timeout, policy.poll_interval, policy.crashloop_restarts, policy.unschedulable_grace) == (
        300.0,
        2.0,
        5,
        30.0,
    )
    assert (config.deploy.kustomize_args, config.deploy.external_images) == ((), ())
    assert (config.e2e.command, config.e2e.requirements, config.e2e.timeout, config.e2e.allow_no_tests) == (
        ("t",),
        (),
        1800.0,
        False,
    )


def test_the_values_written_are_the_values_used(tmp_path: Path) -> None:
    config = load_config(
        repo(
            tmp_path,
            'platform = "linux/arm64"\ntarget = "docker"\n'
            '[tool.stagegate.cluster]\nlocal_registry = true\nlocal_registry_image = "mirror.local/registry:2.8"\n'
            '[tool.stagegate.deploy]\nmanifests = "k8s"\nexternal_images = ["busybox", "redis:7"]\n'
            '[tool.stagegate.e2e]\ncommand = ["t"]\nallow_no_tests = true\n',
        ),
        {},
    )
    assert (config.platform, config.target) == ("linux/arm64", "docker")
    assert (config.cluster.local_registry, config.cluster.local_registry_image) == (
        True,
        "mirror.local/registry:2.8",
    )
    assert config.deploy.external_images == ("busybox", "redis:7")
    assert config.e2e.allow_no_tests is True


# -- paths ---------------------------------------------------------------------------------------


def test_kind_config_must_be_a_file_inside_the_repository(tmp_path: Path) -> None:
    directory = refused(repo(tmp_path / "dir", '[tool.stagegate.cluster]\nkind_config = "k8s"\n'))
    assert directory.subject == {"key": "tool.stagegate.cluster.kind_config", "path": "k8s"}
    assert directory.message == "tool.stagegate.cluster.kind_config: 'k8s' is a directory, not a regular file"
    assert directory.hint == "point kind_config at a file in pyproject.toml"
    missing = refused(repo(tmp_path / "missing", '[tool.stagegate.cluster]\nkind_config = "kind.yaml"\n'))
    assert missing.message == "tool.stagegate.cluster.kind_config: file 'kind.yaml' does not exist"
    assert missing.hint == "create it or fix the path in pyproject.toml"
    outside = refused(repo(tmp_path / "out", '[tool.stagegate.cluster]\nkind_config = "../kind.yaml"\n'))
    assert outside.message == "tool.stagegate.cluster.kind_config = '../kind.yaml' leaves the repository"
    assert outside.hint == "use a path inside the repository, relative to pyproject.toml"


def test_a_context_that_is_a_file_is_named_as_one(tmp_path: Path) -> None:
    error = refused(repo(tmp_path, '[[tool.stagegate.images]]\nname = "a"\ncontext = "k8s/a.yaml"\n'))
    assert (
        error.message == "tool.stagegate.images[0].context: 'k8s/a.yaml' is a regular file, not a directory"
    )
    assert error.hint == "point context at a directory in pyproject.toml"
    missing = refused(repo(tmp_path / "m", '[[tool.stagegate.images]]\nname = "a"\ncontext = "app"\n'))
    assert missing.message == "tool.stagegate.images[0].context: directory 'app' does not exist"


def test_the_artifacts_env_var_wins_over_the_table(tmp_path: Path) -> None:
    root = repo(tmp_path, 'artifacts = "../outside"\n')
    assert load_config(root, {"STAGEGATE_ARTIFACTS": "mine"}).artifacts == root.resolve() / "mine"
    assert refused(root).subject["key"] == "tool.stagegate.artifacts"


# -- deploy.manifests ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("k8s/*.yaml", ["k8s/a.yaml", "k8s/b.yaml"]),
        ("k8s/?.yaml", ["k8s/a.yaml", "k8s/b.yaml"]),
        ("k8s/[b].yaml", ["k8s/b.yaml"]),
        ("*/c.yaml", ["other/c.yaml"]),
    ],
)
def test_each_glob_form_expands_to_its_sorted_matches(
    tmp_path: Path, pattern: str, expected: list[str]
) -> None:
    root = repo(tmp_path, f'[tool.stagegate.deploy]\nmanifests = "{pattern}"\n')
    assert list(load_config(root, {}).deploy.manifests) == [root.resolve() / p for p in expected]


def test_a_single_glob_matching_nothing_is_named_without_an_index(tmp_path: Path) -> None:
    error = refused(repo(tmp_path, '[tool.stagegate.deploy]\nmanifests = "crds/*.yaml"\n'))
    assert error.subject == {"key": "tool.stagegate.deploy.manifests", "path": "crds/*.yaml"}
    assert error.message == "tool.stagegate.deploy.manifests: the glob 'crds/*.yaml' matches nothing"
    assert error.hint == "fix the pattern in pyproject.toml, or remove it"


def test_a_glob_leaving_the_repository_is_refused_before_it_is_expanded(tmp_path: Path) -> None:
    error = refused(repo(tmp_path / "repo", '[tool.stagegate.deploy]\nmanifests = ["k8s", "../*/k8s"]\n'))
    assert error.subject == {"key": "tool.stagegate.deploy.manifests[1]", "path": "../*/k8s"}
    assert error.message == "tool.stagegate.deploy.manifests[1] = '../*/k8s' leaves the repository"
    assert error.hint == "use a glob relative to pyproject.toml, inside the repository"


def test_a_missing_single_source_is_named_as_a_path(tmp_path: Path) -> None:
    error = refused(repo(tmp_path, '[tool.stagegate.deploy]\nmanifests = "gone"\n'))
    assert error.subject == {"key": "tool.stagegate.deploy.manifests", "path": "gone"}
    assert error.message == "tool.stagegate.deploy.manifests: path 'gone' does not exist"


# -- deploy.kustomize_args -----------------------------------------------------------------------


# the flags of `kubectl kustomize --help` (kubectl v1.32, kustomize v5.5.0) that take a value
@pytest.mark.parametrize(
    "flag",
    [
        "--helm-api-versions",
        "--helm-command",
        "--helm-kube-version",
        "--env",
        "-e",
        "--mount",
        "--network-name",
    ],
)
def test_every_value_flag_takes_its_value_either_way_and_needs_one(tmp_path: Path, flag: str) -> None:
    for args in ([flag, "v"], [f"{flag}=v"], ["--enable-helm", flag, "v", "--helm-debug"]):
        assert load_config(
            repo(tmp_path / str(len(args)) / args[0].strip("-="), deploy(args)), {}
        ).deploy.kustomize_args == tuple(args)
    for position, args in ((0, [flag]), (1, ["--enable-helm", flag, "--helm-debug"])):
        error = refused(repo(tmp_path / f"bad{position}", deploy(args)))
        assert error.subject["key"] == f"tool.stagegate.deploy.kustomize_args[{position}]"
        assert error.message == f"tool.stagegate.deploy.kustomize_args: {flag} needs a value"
        assert error.hint == f'write it as "{flag}=VALUE" or follow it with the value'


# ... and those that stand alone
@pytest.mark.parametrize(
    "flag", ["--enable-helm", "--enable-alpha-plugins", "--helm-debug", "--as-current-user", "--network"]
)
def test_every_bool_flag_stands_alone_or_takes_true_or_false(tmp_path: Path, flag: str) -> None:
    args = [flag, f"{flag}=true", f"{flag}=false"]
    assert load_config(repo(tmp_path / "ok", deploy(args)), {}).deploy.kustomize_args == tuple(args)
    error = refused(repo(tmp_path / "bad", deploy(["--enable-helm", f"{flag}=yes"])))
    assert error.subject["key"] == "tool.stagegate.deploy.kustomize_args[1]"
    assert error.message == f"tool.stagegate.deploy.kustomize_args: {flag} takes true or false, not 'yes'"
    assert error.hint == f'write "{flag}"'


@pytest.mark.parametrize("restrictor", ["LoadRestrictionsRootOnly", "LoadRestrictionsNone"])
def test_the_load_restrictor_is_one_of_kustomizes_two(tmp_path: Path, restrictor: str) -> None:
    args = ["--load-restrictor", restrictor, f"--load-restrictor={restrictor}"]
    assert load_config(repo(tmp_path, deploy(args)), {}).deploy.kustomize_args == tuple(args)


def test_a_bad_load_restrictor_points_at_the_value(tmp_path: Path) -> None:
    separate = refused(repo(tmp_path / "a", deploy(["--enable-helm", "--load-restrictor", "None"])))
    assert separate.subject["key"] == "tool.stagegate.deploy.kustomize_args[2]"
    assert separate.message == (
        "tool.stagegate.deploy.kustomize_args: --load-restrictor 'None' is not one of "
        "LoadRestrictionsRootOnly, LoadRestrictionsNone"
    )
    assert separate.hint == (
        "use --load-restrictor=LoadRestrictionsNone to let an overlay load files outside its root"
    )
    joined = refused(repo(tmp_path / "b", deploy(["--load-restrictor=rootonly"])))
    assert joined.subject["key"] == "tool.stagegate.deploy.kustomize_args[0]"
    assert "'rootonly'" in joined.message


def test_a_flag_after_a_value_is_checked_at_its_own_index(tmp_path: Path) -> None:
    error = refused(repo(tmp_path, deploy(["--helm-command", "helm3", "--bogus"])))
    assert error.subject["key"] == "tool.stagegate.deploy.kustomize_args[2]"
    assert (
        error.message
        == "tool.stagegate.deploy.kustomize_args: '--bogus' is not a flag of `kubectl kustomize`"
    )


KNOWN = (
    "--as-current-user, --enable-alpha-plugins, --enable-helm, --env, --helm-api-versions, --helm-command, "
    "--helm-debug, --helm-kube-version, --load-restrictor, --mount, --network, --network-name, -e"
)


def test_an_unknown_flag_gets_the_closest_one_and_the_list(tmp_path: Path) -> None:
    error = refused(repo(tmp_path, deploy(["--enable-helms"])))
    assert error.message == (
        "tool.stagegate.deploy.kustomize_args: '--enable-helms' is not a flag of `kubectl kustomize`"
        " (did you mean --enable-helm?)"
    )
    assert error.hint == f"use one of {KNOWN}"


@pytest.mark.parametrize("flag", ["-o", "--output"])
def test_the_output_flag_is_stagegates_own(tmp_path: Path, flag: str) -> None:
    error = refused(repo(tmp_path, deploy([f"{flag}=x.yaml"])))
    assert error.message.startswith(f"tool.stagegate.deploy.kustomize_args: '{flag}=x.yaml' is not a flag")
    assert error.hint == f"use one of {KNOWN}; -o/--output is stagegate's"


# -- registry and existing -----------------------------------------------------------------------


def test_the_registry_url_loses_its_trailing_slash_and_keeps_insecure(tmp_path: Path) -> None:
    config = load_config(
        repo(tmp_path, '[tool.stagegate.registry]\nurl = "r.example.com:5000/team/"\ninsecure = true\n'), {}
    )
    assert config.registry == RegistryConfig("r.example.com:5000/team", True)
    assert config.registry.repository("example/api") == "r.example.com:5000/team/example/api"


def test_existing_defaults_and_a_context_from_the_allow_list(tmp_path: Path) -> None:
    plain = load_config(repo(tmp_path / "a", '[tool.stagegate.existing]\ncontexts = ["ci"]\n'), {})
    assert plain.existing == ExistingConfig(("ci",), None, "sg-{run}", None)
    chosen = load_config(
        repo(
            tmp_path / "b",
            '[tool.stagegate.existing]\ncontexts = ["ci", "qa"]\ncontext = "qa"\nnamespace = "team-{run}-{owner}"\n',
        ),
        {},
    )
    assert chosen.existing == ExistingConfig(("ci", "qa"), "qa", "team-{run}-{owner}", None)


def test_a_context_outside_the_allow_list_names_the_allowed_ones(tmp_path: Path) -> None:
    error = refused(repo(tmp_path, '[tool.stagegate.existing]\ncontexts = ["ci", "qa"]\ncontext = "prod"\n'))
    assert error.subject == {"key": "tool.stagegate.existing.context"}
    assert (
        error.message == "tool.stagegate.existing.context = 'prod' is not in tool.stagegate.existing.contexts"
    )
    assert error.hint == "add it to contexts (the allow-list) or name one of 'ci', 'qa'"


def test_a_namespace_without_run_is_refused_because_runs_would_share_it(tmp_path: Path) -> None:
    error = refused(
        repo(tmp_path, '[tool.stagegate.existing]\ncontexts = ["ci"]\nnamespace = "sg-{owner}"\n')
    )
    assert error.subject == {"key": "tool.stagegate.existing.namespace"}
    assert error.message == "tool.stagegate.existing.namespace = 'sg-{owner}' does not contain {run}"
    assert error.hint == "two runs at once must never share a namespace: keep {run} in it (default sg-{run})"


def test_the_kubeconfig_is_absolute_home_relative_or_relative_to_the_repository(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))

    def kubeconfig(value: str, where: str) -> Path | None:
        text = f'[tool.stagegate.existing]\ncontexts = ["ci"]\nkubeconfig = "{value}"\n'
        return load_config(repo(tmp_path / where, text), {}).existing.kubeconfig

    assert kubeconfig("/etc/kube/config", "abs") == Path("/etc/kube/config")
    assert kubeconfig("~/.kube/ci", "home") == tmp_path / "home" / ".kube" / "ci"
    assert kubeconfig("kube/config", "rel") == (tmp_path / "rel").resolve() / "kube" / "config"


# -- profiles' overrides -------------------------------------------------------------------------

BASE = '[tool.stagegate.deploy]\nmanifests = "k8s"\nkustomize_args = ["--enable-helm"]\ntimeout = 120\n'


def test_a_profile_setting_one_key_keeps_the_rest_of_the_base_table(tmp_path: Path) -> None:
    root = repo(tmp_path, BASE + "[tool.stagegate.profiles.ci.deploy]\ncrashloop_restarts = 1\n")
    config = load_config(root, {}, profile="ci")
    assert (config.profile, config.profiles) == ("ci", ("ci",))
    assert config.deploy.policy.crashloop_restarts == 1
    assert (config.deploy.policy.timeout, config.deploy.kustomize_args) == (120, ("--enable-helm",))
    assert config.deploy.manifests == (root.resolve() / "k8s",)
    assert load_config(root, {}).deploy.policy.crashloop_restarts == 5


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "crashloop_restarts = -1",
            "tool.stagegate.profiles.ci.deploy.crashloop_restarts must be >= 0, got -1",
        ),
        ("poll_interval = 0", "tool.stagegate.profiles.ci.deploy.poll_interval must be > 0, got 0"),
        (
            "unschedulable_grace = inf",
            "tool.stagegate.profiles.ci.deploy.unschedulable_grace must be a finite number, got inf",
        ),
        ("manifests = []", None),
        ('timeout = "30"', "tool.stagegate.profiles.ci.deploy.timeout has the wrong type: str '30'"),
    ],
)
def test_a_profiles_deploy_keys_have_the_base_tables_types_and_bounds(
    tmp_path: Path, override: str, message: str | None
) -> None:
    error = refused(repo(tmp_path, BASE + f"[tool.stagegate.profiles.ci.deploy]\n{override}\n"))
    assert error.subject["key"].startswith(f"tool.stagegate.profiles.ci.deploy.{override.split()[0]}")
    if message is not None:
        assert error.message == message


def test_a_profiles_e2e_keys_have_the_base_tables_types_and_bounds(tmp_path: Path) -> None:
    empty = refused(repo(tmp_path / "a", "[tool.stagegate.profiles.ci.e2e]\ncommand = []\n"))
    assert empty.message == "tool.stagegate.profiles.ci.e2e.command must not be empty"
    zero = refused(repo(tmp_path / "b", "[tool.stagegate.profiles.ci.e2e]\ntimeout = 0\n"))
    assert zero.message == "tool.stagegate.profiles.ci.e2e.timeout must be > 0, got 0"


def test_a_profile_without_manifests_does_not_need_them(tmp_path: Path) -> None:
    root = repo(
        tmp_path,
        "[tool.stagegate.profiles.ci.deploy]\ntimeout = 5\n[tool.stagegate.profiles.qa.e2e]\ntimeout = 5\n",
    )
    assert load_config(root, {}).profiles == ("ci", "qa")


def test_every_profiles_manifests_are_checked_with_the_profiles_key_path(tmp_path: Path) -> None:
    root = repo(tmp_path, BASE + "[tool.stagegate.profiles.ci.deploy]\nmanifests = ['k8s', 'crds/*.yaml']\n")
    error = refused(root)  # not applied, still checked
    assert error.subject["key"] == "tool.stagegate.profiles.ci.deploy.manifests[1]"


def test_key_paths_name_the_profile_only_for_the_keys_it_sets(tmp_path: Path) -> None:
    sets_args = repo(
        tmp_path / "a", BASE + "[tool.stagegate.profiles.ci.deploy]\nkustomize_args = ['--helm-command']\n"
    )
    assert (
        refused(sets_args, profile="ci").subject["key"]
        == "tool.stagegate.profiles.ci.deploy.kustomize_args[0]"
    )
    keeps_args = repo(
        tmp_path / "b",
        '[tool.stagegate.deploy]\nmanifests = "k8s"\nkustomize_args = ["--bogus"]\n'
        "[tool.stagegate.profiles.ci.deploy]\ntimeout = 5\n",
    )
    assert refused(keeps_args, profile="ci").subject["key"] == "tool.stagegate.deploy.kustomize_args[0]"


def test_a_profile_can_bring_the_whole_table_the_base_lacks(tmp_path: Path) -> None:
    root = repo(tmp_path, "[tool.stagegate.profiles.ci.deploy]\nmanifests = 'other'\ntimeout = 9\n")
    assert load_config(root, {}).deploy is None
    config = load_config(root, {}, profile="ci")
    assert (config.deploy.manifests, config.deploy.policy.timeout) == ((root.resolve() / "other",), 9)


def test_asking_for_a_profile_that_is_not_configured_is_refused(tmp_path: Path) -> None:
    root = repo(tmp_path, BASE + "[tool.stagegate.profiles.staging.deploy]\ntimeout = 5\n")
    error = refused(root, profile="stagin")
    assert error.subject == {"key": "--profile", "profile": "stagin"}
    assert error.hint == "did you mean 'staging'?"
    assert refused(root, profile="prod").hint == "profiles: staging"


# -- images: duplicates and cycles, as the user reads them -----------------------------------------


def test_a_duplicate_image_and_a_cycle_are_spelled_out(tmp_path: Path) -> None:
    twice = refused(
        repo(
            tmp_path / "twice",
            '[[tool.stagegate.images]]\nname = "a"\n[[tool.stagegate.images]]\nname = "a"\n',
            {"Dockerfile": "FROM busybox\n"},
        )
    )
    assert twice.message == "image 'a' is configured twice (images[0] and images[1])"
    assert twice.hint == "give every image its own name"
    cycle = refused(
        repo(
            tmp_path / "cycle",
            '[[tool.stagegate.images]]\nname = "a"\ndepends_on = ["b"]\n[[tool.stagegate.images]]\nname = "b"\ndepends_on = ["a"]\n',
            {"Dockerfile": "FROM busybox\n"},
        )
    )
    assert cycle.message == "images depend on each other in a cycle: a -> b -> a"
    assert (
        cycle.hint == "remove one of these dependencies (depends_on or a FROM line naming a configured image)"
    )
