"""deploy.manifests as a list of sources (dirs, files, globs), kustomize_args, and the errors of
`kubectl kustomize`: klog's multi-line error value, and a remote base that cannot be fetched."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest
from stagegate.config import load_config
from stagegate.errors import Code, StagegateError
from stagegate.manifests import kustomize_reason, remote_base_failure, render_sources

POD = "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  containers: [{{name: c, image: app:1}}]\n"

# Recorded: kubectl v1.32.4 (kustomize v5.5.0) `kubectl kustomize DIR` offline, DIR's
# kustomization.yaml listing `https://github.com/kubernetes-sigs/kustomize//examples/helloWorld?ref=v3.3.1`
# (the DNS resolver's address replaced by 127.0.0.53). klog prints a multi-line error as `err=<`,
# indented lines, ` >` — which is why the last line alone said nothing but `>`.
REMOTE_HTTPS_STDERR = """\
E1201 23:37:43.283035   24315 run.go:72] "command failed" err=<
\taccumulating resources: accumulation err='accumulating resources from 'https://github.com/kubernetes-sigs/kustomize//examples/helloWorld?ref=v3.3.1': Get "https://github.com/kubernetes-sigs/kustomize//examples/helloWorld?ref=v3.3.1": dial tcp: lookup github.com on 127.0.0.53:53: no such host': failed to run '/usr/bin/git fetch --depth=1 https://github.com/kubernetes-sigs/kustomize v3.3.1': fatal: unable to access 'https://github.com/kubernetes-sigs/kustomize/': Could not resolve host: github.com
\t: exit status 128
 >
"""
# Recorded the same way with `github.com/example/platform//deploy/base?ref=v1.2.0` (the
# kustomization's directory replaced by /repo/k8s).
REMOTE_HOST_FIRST_STDERR = """\
E1201 23:37:46.805108   25118 run.go:72] "command failed" err=<
\taccumulating resources: accumulation err='accumulating resources from 'github.com/example/platform//deploy/base?ref=v1.2.0': evalsymlink failure on '/repo/k8s/github.com/example/platform/deploy/base?ref=v1.2.0' : lstat /repo/k8s/github.com: no such file or directory': failed to run '/usr/bin/git fetch --depth=1 https://github.com/example/platform v1.2.0': fatal: unable to access 'https://github.com/example/platform/': Could not resolve host: github.com
\t: exit status 128
 >
"""
# Recorded the same way with a local resource `missing-dir` that does not exist: not remote.
LOCAL_MISSING_STDERR = (
    'E1201 23:37:46.849379   25140 run.go:72] "command failed" err="accumulating resources: '
    "accumulation err='accumulating resources from 'missing-dir': evalsymlink failure on "
    "'/repo/k8s/missing-dir' : lstat /repo/k8s/missing-dir: no such file or directory': must build at "
    "directory: not a valid directory: evalsymlink failure on '/repo/k8s/missing-dir' : lstat "
    '/repo/k8s/missing-dir: no such file or directory"\n'
)


def repo(root: Path, deploy: str, files: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(
        '[project]\nname = "demo"\n[tool.stagegate]\n[tool.stagegate.deploy]\n' + textwrap.dedent(deploy)
    )
    for relpath, text in files.items():
        (root / relpath).parent.mkdir(parents=True, exist_ok=True)
        (root / relpath).write_text(text)
    return root


def config_error(root: Path) -> StagegateError:
    with pytest.raises(StagegateError) as info:
        load_config(root, env={})
    assert info.value.code is Code.CONFIG_INVALID
    return info.value


# -- a list of sources -------------------------------------------------------------------------


def test_a_single_string_is_still_one_source(tmp_path: Path) -> None:
    root = repo(tmp_path, 'manifests = "k8s/a.yaml"\n', {"k8s/a.yaml": POD.format(name="a")})
    assert load_config(root, env={}).deploy.manifests == (root / "k8s/a.yaml",)


def test_sources_in_the_configured_order_with_globs_sorted(tmp_path: Path) -> None:
    root = repo(
        tmp_path,
        'manifests = ["crds/z.yaml", "apps/*.yaml", "extra"]\n',
        {
            "crds/z.yaml": POD.format(name="z"),
            "apps/b.yaml": POD.format(name="b"),
            "apps/a.yaml": POD.format(name="a"),
            "apps/notes.txt": "not yaml",
            "extra/c.yaml": POD.format(name="c"),
        },
    )
    deploy = load_config(root, env={}).deploy
    assert [p.relative_to(root).as_posix() for p in deploy.manifests] == [
        "crds/z.yaml",
        "apps/a.yaml",
        "apps/b.yaml",
        "extra",
    ]
    objects = render_sources(deploy.manifests, root)
    assert [(o.source, o.name) for o in objects] == [
        ("crds/z.yaml", "z"),
        ("apps/a.yaml", "a"),
        ("apps/b.yaml", "b"),
        ("extra/c.yaml", "c"),
    ]


def test_a_glob_that_matches_nothing_is_named(tmp_path: Path) -> None:
    root = repo(tmp_path, 'manifests = ["k8s/a.yaml", "crds/*.yaml"]\n', {"k8s/a.yaml": POD.format(name="a")})
    error = config_error(root)
    assert error.subject["key"] == "tool.stagegate.deploy.manifests[1]"
    assert "'crds/*.yaml' matches nothing" in error.message


@pytest.mark.parametrize("entry", ["../outside/*.yaml", "/etc/*.conf", "../outside.yaml"])
def test_every_source_stays_inside_the_repository(tmp_path: Path, entry: str) -> None:
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "x.yaml").write_text(POD.format(name="x"))
    (tmp_path / "outside.yaml").write_text(POD.format(name="x"))
    root = repo(
        tmp_path / "repo", f'manifests = ["k8s/a.yaml", "{entry}"]\n', {"k8s/a.yaml": POD.format(name="a")}
    )
    error = config_error(root)
    assert error.subject["key"] == "tool.stagegate.deploy.manifests[1]"
    assert "leaves the repository" in error.message


def test_a_glob_matching_a_symlink_out_of_the_repository_is_refused(tmp_path: Path) -> None:
    (tmp_path / "secret.yaml").write_text(POD.format(name="x"))
    root = repo(tmp_path / "repo", 'manifests = ["k8s/*.yaml"]\n', {"k8s/a.yaml": POD.format(name="a")})
    (root / "k8s" / "b.yaml").symlink_to(tmp_path / "secret.yaml")
    assert "leaves the repository" in config_error(root).message


def test_an_empty_list_is_refused(tmp_path: Path) -> None:
    root = repo(tmp_path, "manifests = []\n", {})
    assert "manifests" in config_error(root).subject["key"]


# -- kustomize_args ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["--load-restrictor", "LoadRestrictionsNone", "--enable-helm"],
        ["--load-restrictor=LoadRestrictionsNone"],
        ["--enable-helm=true", "--helm-command", "helm3", "--helm-kube-version=1.32"],
        ["--enable-alpha-plugins", "-e", "A=1", "--mount=type=bind,src=.,dst=/x"],
    ],
)
def test_kustomize_args_that_kubectl_kustomize_accepts(tmp_path: Path, args: list[str]) -> None:
    root = repo(
        tmp_path,
        f'manifests = "k8s/a.yaml"\nkustomize_args = {args!r}\n'.replace("'", '"'),
        {"k8s/a.yaml": POD.format(name="a")},
    )
    assert load_config(root, env={}).deploy.kustomize_args == tuple(args)


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--load-restricter", "LoadRestrictionsNone"], "did you mean --load-restrictor?"),
        (["--load-restrictor", "None"], "is not one of LoadRestrictionsRootOnly, LoadRestrictionsNone"),
        (["--load-restrictor"], "--load-restrictor needs a value"),
        (["--load-restrictor", "--enable-helm"], "--load-restrictor needs a value"),
        (["--enable-helm=yes"], "takes true or false"),
        (["-o", "out.yaml"], "is not a flag of `kubectl kustomize`"),
        (["LoadRestrictionsNone"], "is not a flag of `kubectl kustomize`"),
    ],
)
def test_kustomize_args_that_it_does_not(tmp_path: Path, args: list[str], said: str) -> None:
    root = repo(
        tmp_path,
        f'manifests = "k8s/a.yaml"\nkustomize_args = {args!r}\n'.replace("'", '"'),
        {"k8s/a.yaml": POD.format(name="a")},
    )
    error = config_error(root)
    assert error.subject["key"].startswith("tool.stagegate.deploy.kustomize_args[")
    assert said in error.message


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="needs the real kubectl (kustomize)")
def test_kustomize_args_reach_kubectl_kustomize(tmp_path: Path) -> None:
    """An overlay that loads a file outside its root renders only with LoadRestrictionsNone."""
    root = repo(
        tmp_path,
        'manifests = "k8s/overlay"\nkustomize_args = ["--load-restrictor", "LoadRestrictionsNone"]\n',
        {
            "k8s/overlay/kustomization.yaml": "resources:\n- ../shared/pod.yaml\n",
            "k8s/shared/pod.yaml": POD.format(name="p"),
        },
    )
    deploy = load_config(root, env={}).deploy
    assert [o.name for o in render_sources(deploy.manifests, root, kustomize_args=deploy.kustomize_args)] == [
        "p"
    ]
    with pytest.raises(StagegateError) as info:
        render_sources(deploy.manifests, root)
    assert info.value.code is Code.CONFIG_INVALID
    assert "reads k8s/shared/pod.yaml, which is not in or below k8s/overlay" in info.value.message
    assert '["--load-restrictor", "LoadRestrictionsNone"]' in info.value.hint
    assert "security; file" in info.value.log_excerpt  # kustomize's own words stay in the evidence


# -- render errors -----------------------------------------------------------------------------


def test_klog_multi_line_error_is_the_reason_not_its_closing_bracket() -> None:
    reason = kustomize_reason(REMOTE_HTTPS_STDERR, Path("/repo"))
    assert reason.startswith(
        "accumulating resources: accumulation err='accumulating resources from 'https://"
    )
    assert reason.endswith(": exit status 128")


@pytest.mark.parametrize(
    ("stderr", "url"),
    [
        (REMOTE_HTTPS_STDERR, "https://github.com/kubernetes-sigs/kustomize//examples/helloWorld?ref=v3.3.1"),
        (REMOTE_HOST_FIRST_STDERR, "github.com/example/platform//deploy/base?ref=v1.2.0"),
    ],
)
def test_a_remote_base_that_cannot_be_fetched_is_named(stderr: str, url: str) -> None:
    assert remote_base_failure(stderr, Path("/repo")) == (url, "Could not resolve host: github.com")


def test_a_missing_local_resource_is_not_a_remote_base() -> None:
    assert remote_base_failure(LOCAL_MISSING_STDERR, Path("/repo")) is None
    assert "missing-dir" in kustomize_reason(LOCAL_MISSING_STDERR, Path("/repo"))


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="needs the real kubectl (kustomize)")
def test_render_of_an_unreachable_remote_base_is_its_own_error(tmp_path: Path) -> None:
    """The real kubectl, offline (as on these machines and in an air-gapped CI)."""
    url = "https://github.com/kubernetes-sigs/kustomize//examples/helloWorld?ref=v3.3.1"
    root = repo(tmp_path, 'manifests = "k8s"\n', {"k8s/kustomization.yaml": f"resources:\n- {url}\n"})
    deploy = load_config(root, env={}).deploy
    with pytest.raises(StagegateError) as info:
        render_sources(deploy.manifests, root)
    error = info.value
    if error.code is not Code.MANIFEST_REMOTE_UNREACHABLE:
        pytest.skip(f"the network answered here: {error.message}")
    assert error.subject == {
        "key": "tool.stagegate.deploy.manifests",
        "file": "k8s/kustomization.yaml",
        "line": 2,
        "url": url,
    }
    assert error.message.startswith(f"kubectl kustomize k8s could not fetch the remote base {url}: ")
    assert "vendor that base" in error.hint
    assert "git fetch" in error.log_excerpt


def test_yaml_files_in_sub_folders_of_a_plain_dir_are_reported_as_unread(tmp_path: Path) -> None:
    from stagegate.manifests import unread_files

    for relpath in ("k8s/a.yaml", "k8s/db/b.yaml", "k8s/jobs/deep/c.yml", "k8s/db/notes.txt"):
        (tmp_path / relpath).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relpath).write_text(POD.format(name="p"))
    k8s = tmp_path / "k8s"
    assert unread_files([k8s]) == {k8s: [k8s / "db" / "b.yaml", k8s / "jobs" / "deep" / "c.yml"]}
    # read by another source: not unread
    assert unread_files([k8s, k8s / "db", k8s / "jobs" / "deep" / "c.yml"]) == {}
    assert unread_files([k8s / "a.yaml"]) == {}  # a file source has no sub-folders
    (k8s / "kustomization.yaml").write_text("resources: [a.yaml]\n")
    assert unread_files([k8s]) == {}  # kustomize decides what it reads
