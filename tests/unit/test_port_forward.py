"""``[tool.stagegate.e2e] port_forward``: the key validated like every key, the entries matched
against the rendered manifests (missing resource, undeclared port name, namespace), and the
lines that name each workload port no Service and no entry reaches."""

from __future__ import annotations

import socket
import textwrap
from pathlib import Path

import pytest
import yaml
from stagegate.config import PortForward, load_config
from stagegate.errors import Code, StagegateError
from stagegate.manifests import ManifestObject
from stagegate.targets.forwards import (
    ResolvedForward,
    forward_problems,
    local_port_free,
    resolve_forwards,
    shadowed_services,
    unreached_ports,
)

from tests.unit.test_config import make_repo


def load(tmp_path: Path, e2e: str, profiles: str = "", profile: str | None = None):
    text = f'[tool.stagegate]\n[tool.stagegate.e2e]\ncommand = ["pytest", "e2e"]\n{e2e}\n{profiles}'
    root = make_repo(tmp_path, text, {"k8s/a.yaml": "kind: ConfigMap\n"})
    return load_config(root, env={}, profile=profile)


def refused(tmp_path: Path, e2e: str) -> StagegateError:
    with pytest.raises(StagegateError) as info:
        load(tmp_path, e2e)
    assert info.value.code == Code.CONFIG_INVALID
    return info.value


# -- the key ------------------------------------------------------------------------------------


def test_skaffolds_shape_is_read_with_a_port_number_or_name(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        'port_forward = [{ resource_type = "deployment", resource_name = "leeroy-web", port = 8080, local_port = 9000 },\n'
        '  { resource_type = "statefulset", resource_name = "db", namespace = "data", port = "pg" }]',
    )
    assert config.e2e is not None
    assert config.e2e.port_forward == (
        PortForward("deployment", "leeroy-web", 8080, None, 9000),
        PortForward("statefulset", "db", "pg", "data", None),
    )


def test_without_the_key_there_is_no_entry(tmp_path: Path) -> None:
    config = load(tmp_path, "")
    assert config.e2e is not None and config.e2e.port_forward == ()


@pytest.mark.parametrize(
    ("entry", "key", "message", "hint"),
    [
        (
            'resource_type = "Deployment", resource_name = "web", port = 80',
            "[0].resource_type",
            "= 'Deployment' is not one of 'service', 'deployment', 'statefulset' or 'pod'",
            "did you mean 'deployment'? use one of",
        ),
        (
            'resource_type = "daemonset", resource_name = "web", port = 80',
            "[0].resource_type",
            "is not one of",
            "use one of 'service'",
        ),
        (
            'resource_type = "pod", resource_name = "web", prot = 80',
            "[0].prot",
            "unknown key",
            "did you mean 'port'?",
        ),
        (
            'resource_type = "pod", resource_name = "web", port = 0',
            "[0].port",
            "must be >= 1, got 0",
            "set port",
        ),
        (
            'resource_type = "pod", resource_name = "web", port = "HTTP"',
            "[0].port",
            "= 'HTTP' is not a port number or the name of a declared port",
            "use a value matching",
        ),
        (
            'resource_type = "pod", resource_name = "web", port = 80, local_port = 70000',
            "[0].local_port",
            "must be <= 65535, got 70000",
            "set local_port",
        ),
        (
            'resource_type = "pod", resource_name = "Web", port = 80',
            "[0].resource_name",
            "is not a lowercase DNS name",
            "use a value matching",
        ),
    ],
)
def test_a_bad_entry_is_refused_with_its_key_path(
    tmp_path: Path, entry: str, key: str, message: str, hint: str
) -> None:
    error = refused(tmp_path, f"port_forward = [{{ {entry} }}]")
    assert error.subject["key"] == f"tool.stagegate.e2e.port_forward{key}"
    assert message in error.message
    assert error.hint.startswith(hint)


def test_two_entries_on_one_local_port_or_one_port_twice_are_refused(tmp_path: Path) -> None:
    same_local = refused(
        tmp_path,
        'port_forward = [{ resource_type = "pod", resource_name = "a", port = 80, local_port = 9000 },'
        ' { resource_type = "pod", resource_name = "b", port = 80, local_port = 9000 }]',
    )
    assert same_local.subject["key"] == "tool.stagegate.e2e.port_forward[1].local_port"
    twice = refused(
        tmp_path / "twice",
        'port_forward = [{ resource_type = "pod", resource_name = "a", port = 80 },'
        ' { resource_type = "pod", resource_name = "a", port = 80 }]',
    )
    assert twice.message.endswith("forwards pod/a port 80 again")


def test_a_profile_replaces_the_entries(tmp_path: Path) -> None:
    profiles = (
        "[tool.stagegate.profiles.docker.e2e]\n"
        'port_forward = [{ resource_type = "service", resource_name = "api", port = 80 }]\n'
    )
    base = 'port_forward = [{ resource_type = "pod", resource_name = "a", port = 80 }]'
    assert load(tmp_path, base, profiles).e2e.port_forward == (PortForward("pod", "a", 80),)
    assert load(tmp_path, base, profiles, profile="docker").e2e.port_forward == (
        PortForward("service", "api", 80),
    )


# -- against the manifests ----------------------------------------------------------------------

MANIFESTS = textwrap.dedent("""\
    apiVersion: apps/v1
    kind: Deployment
    metadata: {name: leeroy-web, namespace: shop}
    spec:
      selector: {matchLabels: {app: leeroy-web}}
      template:
        metadata: {labels: {app: leeroy-web}}
        spec:
          containers:
            - name: web
              image: leeroy-web
              ports: [{name: http, containerPort: 8080}]
    ---
    apiVersion: apps/v1
    kind: Deployment
    metadata: {name: leeroy-app, namespace: shop}
    spec:
      selector: {matchLabels: {app: leeroy-app}}
      template:
        metadata: {labels: {app: leeroy-app}}
        spec:
          containers:
            - name: app
              image: leeroy-app
              ports: [{name: http, containerPort: 50051}, {name: metrics, containerPort: 9090}]
    ---
    apiVersion: v1
    kind: Service
    metadata: {name: leeroy-app, namespace: shop}
    spec:
      selector: {app: leeroy-app}
      ports: [{name: grpc, port: 80, targetPort: http}]
    """)


def objects() -> list[ManifestObject]:
    return [ManifestObject("k8s/all.yaml", doc) for doc in yaml.safe_load_all(MANIFESTS) if doc]


def test_an_entry_is_found_with_its_objects_namespace_and_its_port_name_resolved() -> None:
    resolved = resolve_forwards(
        objects(),
        [
            PortForward("deployment", "leeroy-web", 8080, local_port=9000),
            PortForward("deployment", "leeroy-app", "metrics"),
            PortForward("service", "leeroy-app", "grpc", namespace="shop"),
        ],
    )
    assert resolved == [
        ResolvedForward(0, "Deployment", "leeroy-web", "shop", 8080, 9000),
        ResolvedForward(1, "Deployment", "leeroy-app", "shop", 9090),
        ResolvedForward(2, "Service", "leeroy-app", "shop", 80),
    ]
    assert resolved[0].resource == "deployment/leeroy-web"


@pytest.mark.parametrize(
    ("forward", "key", "message", "hint"),
    [
        (
            PortForward("deployment", "leeroy-wbe", 8080),
            "resource_name",
            "port_forward[0]: deployment/leeroy-wbe is not in the rendered manifests",
            "did you mean 'leeroy-web'?",
        ),
        (
            PortForward("statefulset", "db", 5432),
            "resource_name",
            "port_forward[0]: statefulset/db is not in the rendered manifests",
            "the manifests have no StatefulSet",
        ),
        (
            PortForward("deployment", "leeroy-web", 8080, namespace="default"),
            "resource_name",
            "port_forward[0]: deployment/leeroy-web in namespace default is not in the rendered manifests",
            "it is in namespace shop: correct the entry's namespace, or leave it out",
        ),
        (
            PortForward("deployment", "leeroy-web", "grpc"),
            "port",
            "port_forward[0]: deployment/leeroy-web declares no container port named 'grpc'",
            "use one of its named ports (8080 'http')",
        ),
        (
            PortForward("service", "leeroy-app", "http"),
            "port",
            "port_forward[0]: service/leeroy-app declares no port named 'http'",
            "use one of its named ports (80 'grpc')",
        ),
    ],
)
def test_an_entry_naming_what_the_manifests_lack_is_refused(
    forward: PortForward, key: str, message: str, hint: str
) -> None:
    with pytest.raises(StagegateError) as info:
        resolve_forwards(objects(), [forward])
    assert info.value.code == Code.CONFIG_INVALID
    assert info.value.subject["key"] == f"tool.stagegate.e2e.port_forward[0].{key}"
    assert (info.value.message, info.value.hint.startswith(hint)) == (message, True), info.value.hint
    assert [e.message for e in forward_problems(objects(), [PortForward("pod", "x", 1), forward])] == [
        "port_forward[0]: pod/x is not in the rendered manifests",
        message.replace("[0]", "[1]"),
    ]


def test_a_port_number_need_not_be_declared() -> None:
    """kubectl forwards to any port of the pod; only a name must be declared."""
    assert resolve_forwards(objects(), [PortForward("deployment", "leeroy-web", 7000)])[0].port == 7000


def test_each_workload_port_without_an_endpoint_is_named() -> None:
    assert unreached_ports(objects(), []) == [
        "no endpoint for Deployment/leeroy-web port 8080: no Service selects it — "
        "add it to [tool.stagegate.e2e] port_forward",
        "no endpoint for Deployment/leeroy-app port 9090: no Service port targets it — "
        "add it to [tool.stagegate.e2e] port_forward",
    ]
    forwarded = resolve_forwards(
        objects(),
        [PortForward("deployment", "leeroy-web", "http"), PortForward("deployment", "leeroy-app", 9090)],
    )
    assert unreached_ports(objects(), forwarded) == []


def test_a_service_of_a_forwarded_name_is_named_as_taken_over() -> None:
    forwarded = resolve_forwards(objects(), [PortForward("deployment", "leeroy-app", 9090)])
    assert shadowed_services(objects(), forwarded) == ["leeroy-app"]
    web = resolve_forwards(objects(), [PortForward("deployment", "leeroy-web", 8080)])
    assert shadowed_services(objects(), web) == []


def test_a_local_port_is_free_until_something_listens_on_it() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        sock.listen()
        assert not local_port_free(port)
    assert local_port_free(port)
