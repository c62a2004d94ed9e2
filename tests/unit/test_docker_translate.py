"""Manifests to container plans for the docker target (no engine needed)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from stagegate.errors import Code, StagegateError
from stagegate.manifests import ManifestObject
from stagegate.targets.docker import translate
from stagegate.targets.docker.plans import ForwarderPlan
from stagegate.targets.docker.translate import forwarder_plans


def objects(text: str) -> list[ManifestObject]:
    return [ManifestObject("k8s/app.yaml", doc) for doc in yaml.safe_load_all(text) if doc]


DEPLOYMENT = """
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: demo}
data: {MODE: fast, config.ini: "[main]"}
---
apiVersion: v1
kind: Secret
metadata: {name: creds, namespace: demo}
data: {TOKEN: czNjcmV0}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: api, namespace: demo}
spec:
  replicas: 2
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec:
      volumes:
        - {name: scratch, emptyDir: {}}
        - {name: conf, configMap: {name: settings}}
      initContainers:
        - {name: migrate, image: example/api, command: ["python3", "-m", "api.migrate"]}
      containers:
        - name: api
          image: example/api:sg-1
          command: ["python3", "-m", "api"]
          args: ["--port", "8080"]
          workingDir: /srv
          env:
            - {name: PLAIN, value: "1"}
            - name: MODE
              valueFrom: {configMapKeyRef: {name: settings, key: MODE}}
            - name: TOKEN
              valueFrom: {secretKeyRef: {name: creds, key: TOKEN}}
            - name: POD
              valueFrom: {fieldRef: {fieldPath: metadata.name}}
          envFrom:
            - {configMapRef: {name: settings}, prefix: CFG_}
          ports: [{name: http, containerPort: 8080}]
          readinessProbe: {httpGet: {path: /healthz, port: http}}
          volumeMounts:
            - {name: scratch, mountPath: /tmp/scratch}
            - {name: conf, mountPath: /etc/api}
---
apiVersion: v1
kind: Service
metadata: {name: api-server, namespace: demo}
spec:
  selector: {app: api}
  ports: [{port: 8080, targetPort: http}]
"""  # czNjcmV0 is base64 for s3cret


def test_a_deployment_becomes_one_plan_per_replica(tmp_path: Path) -> None:
    pods = translate(objects(DEPLOYMENT), workdir=tmp_path)
    assert [p.name for p in pods] == ["api-0", "api-1"]
    pod = pods[0]
    assert [c.name for c in pod.init] == ["migrate"]
    api = pod.containers[0]
    assert (api.entrypoint, api.command, api.workdir) == ("python3", ["-m", "api", "--port", "8080"], "/srv")
    assert api.env == {
        "CFG_MODE": "fast",
        "CFG_config.ini": "[main]",
        "PLAIN": "1",
        "MODE": "fast",
        "TOKEN": "s3cret",
        "POD": "api-0",
    }
    assert api.secret_env == {"TOKEN"}
    assert api.to_json()["env"]["TOKEN"] == "<redacted>"
    assert api.ports == [8080]
    assert api.aliases == ["api-server"]  # the Service selecting it
    assert pod.init[0].aliases == []  # init containers are not behind Services
    assert api.readiness["httpGet"]["port"] == 8080  # named port resolved
    assert api.volumes == [("scratch", "/tmp/scratch")]
    [(source, target, mode)] = api.mounts
    assert (target, mode) == ("/etc/api", "ro")
    assert (Path(source) / "config.ini").read_text() == "[main]"


def test_args_alone_keep_the_images_entrypoint(tmp_path: Path) -> None:
    text = DEPLOYMENT.replace('          command: ["python3", "-m", "api"]\n', "")
    api = translate(objects(text), workdir=tmp_path)[0].containers[0]
    assert (api.entrypoint, api.command) == (None, ["--port", "8080"])


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ("key: TOKEN}", "key: PASSWORD}"),
        ("secretKeyRef: {name: creds", "secretKeyRef: {name: other"),
    ],
)
def test_missing_secret_keys_become_a_config_error_of_the_container(
    tmp_path: Path, change: str, error: str
) -> None:
    api = translate(objects(DEPLOYMENT.replace(change, error)), workdir=tmp_path)[0].containers[0]
    assert api.config_error in ("couldn't find key PASSWORD in Secret demo/creds", 'secret "other" not found')


def test_optional_missing_keys_are_fine(tmp_path: Path) -> None:
    text = DEPLOYMENT.replace("{name: creds, key: TOKEN}", "{name: creds, key: NOPE, optional: true}")
    api = translate(objects(text), workdir=tmp_path)[0].containers[0]
    assert api.config_error is None and "TOKEN" not in api.env


def test_everything_unsupported_is_listed_at_once(tmp_path: Path) -> None:
    text = DEPLOYMENT.replace("emptyDir: {}", "hostPath: {path: /srv}")
    text = text.replace("      volumes:", "      hostNetwork: true\n      volumes:")
    text += "---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: web, namespace: demo}\n"
    text = text.replace(
        "ports: [{port: 8080, targetPort: http}]", "ports: [{port: 80, targetPort: 8080, protocol: UDP}]"
    )
    with pytest.raises(StagegateError) as caught:
        translate(objects(text), workdir=tmp_path)
    assert caught.value.code == Code.MANIFEST_UNSUPPORTED
    problems = "\n".join(caught.value.subject["unsupported"])
    assert "kind Ingress" in problems
    assert "hostNetwork" in problems
    assert "hostPath" in problems
    assert "port 80 is UDP: the docker target maps only TCP ports to a different targetPort" in problems


def test_namespaces_are_kept_apart(tmp_path: Path) -> None:
    text = DEPLOYMENT.replace(
        "metadata: {name: api-server, namespace: demo}", "metadata: {name: api-server, namespace: other}"
    )
    api = translate(objects(text), workdir=tmp_path)[0].containers[0]
    assert api.aliases == []


JOB = """
apiVersion: batch/v1
kind: Job
metadata: {name: migrate, namespace: demo}
spec:
  backoffLimit: 2
  parallelism: 5
  completions: 4
  template:
    metadata: {labels: {app: migrate}, annotations: {stagegate.dev/converge: "true"}}
    spec:
      restartPolicy: Never
      containers:
        - name: migrate
          image: example/migrate
          env: [{name: POD, valueFrom: {fieldRef: {fieldPath: metadata.name}}}]
"""


def test_a_job_starts_parallelism_pods_capped_with_job_names_and_labels(tmp_path: Path) -> None:
    pods = translate(objects(JOB), workdir=tmp_path)
    assert len(pods) == 3  # min(parallelism, completions), capped at MAX_REPLICAS
    assert len({p.name for p in pods}) == 3
    pod = pods[0]
    assert re.fullmatch(r"migrate-[bcdfghjklmnpqrstvwxz2456789]{5}", pod.name)
    assert pod.restart_policy == "Never"
    assert pod.annotations == {"stagegate.dev/converge": "true"}
    assert pod.labels["job-name"] == pod.labels["batch.kubernetes.io/job-name"] == "migrate"
    assert pod.labels["batch.kubernetes.io/controller-uid"] == pod.owner.uid
    assert pod.labels["app"] == "migrate"
    assert pod.containers[0].env["POD"] == pod.name
    again = pod.renamed("migrate-zzzzz")  # a replacement pod: the same template, its own name
    assert (again.name, again.containers[0].pod, again.containers[0].env["POD"]) == ("migrate-zzzzz",) * 3
    assert pod.containers[0].env["POD"] == pod.name


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ("restartPolicy: Never", "a Job's restartPolicy must be Never or OnFailure"),
        ("backoffLimit: 2", "spec.activeDeadlineSeconds is not supported"),
    ],
)
def test_what_a_job_cannot_do_here_is_refused(tmp_path: Path, change: str, problem: str) -> None:
    replacement = {
        "restartPolicy: Never": "restartPolicy: Always",
        "backoffLimit: 2": "activeDeadlineSeconds: 60",
    }
    with pytest.raises(StagegateError) as caught:
        translate(objects(JOB.replace(change, replacement[change])), workdir=tmp_path)
    assert any(problem in line for line in caught.value.subject["unsupported"])


def test_a_deployment_keeps_restart_policy_always_and_its_template_annotations(tmp_path: Path) -> None:
    text = DEPLOYMENT.replace(
        "metadata: {labels: {app: api}}", "metadata: {labels: {app: api}, annotations: {a: b}}"
    )
    pod = translate(objects(text), workdir=tmp_path)[0]
    assert (pod.restart_policy, pod.annotations, pod.owner.kind) == ("Always", {"a": "b"}, "Deployment")
    assert pod.labels["pod-template-hash"] == pod.owner.template_hash
    with pytest.raises(StagegateError, match="restartPolicy must be Always"):
        translate(
            objects(text.replace("      volumes:", "      restartPolicy: Never\n      volumes:")),
            workdir=tmp_path,
        )


BACKEND = "api-server.demo.stagegate-pods"


def service_ports(text: str, ports: str) -> str:
    return text.replace("ports: [{port: 8080, targetPort: http}]", f"ports: {ports}")


def test_ports_equal_to_their_targets_keep_the_plain_alias_and_no_forwarder(tmp_path: Path) -> None:
    for ports in ("[{port: 8080, targetPort: http}]", "[{port: 8080, targetPort: 8080}]", "[{port: 8080}]"):
        found = objects(service_ports(DEPLOYMENT, ports))
        pods = translate(found, workdir=tmp_path)
        assert [c.aliases for p in pods for c in p.containers] == [["api-server"], ["api-server"]], ports
        assert forwarder_plans(found, pods) == []


@pytest.mark.parametrize("target", ["8080", "http", "'8080'"])
def test_a_service_port_mapped_to_another_target_gets_a_forwarder_and_its_pods_the_backend_alias(
    tmp_path: Path, target: str
) -> None:
    found = objects(service_ports(DEPLOYMENT, f"[{{port: 80, targetPort: {target}}}]"))
    pods = translate(found, workdir=tmp_path)
    # the pods keep no alias of the Service's name: only the forwarder answers on it
    assert [c.aliases for p in pods for c in p.containers] == [[BACKEND], [BACKEND]]
    assert [c.aliases for p in pods for c in p.init] == [[], []]
    [forwarder] = forwarder_plans(found, pods)
    assert forwarder == ForwarderPlan("api-server", "demo", BACKEND, ((80, 8080),))
    assert forwarder.arguments == [BACKEND, "80:8080"]
    assert forwarder.to_json()["network_aliases"] == ["api-server"]


def test_a_forwarder_maps_every_port_of_its_service_equal_or_not(tmp_path: Path) -> None:
    text = service_ports(
        DEPLOYMENT, "[{name: web, port: 8080, targetPort: http}, {name: admin, port: 9000, targetPort: 9090}]"
    )
    found = objects(text)
    [forwarder] = forwarder_plans(found, translate(found, workdir=tmp_path))
    assert forwarder.ports == ((8080, 8080), (9000, 9090))


def test_services_selecting_the_same_pods_are_aliased_or_forwarded_each_on_its_own(tmp_path: Path) -> None:
    text = DEPLOYMENT + (
        "---\napiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: demo}\n"
        "spec: {selector: {app: api}, ports: [{port: 80, targetPort: http}]}\n"
    )
    found = objects(text)
    pods = translate(found, workdir=tmp_path)
    assert pods[0].containers[0].aliases == ["api-server", "web.demo.stagegate-pods"]
    assert [f.service for f in forwarder_plans(found, pods)] == ["web"]


def test_a_headless_service_keeps_the_plain_alias_whatever_its_ports(tmp_path: Path) -> None:
    # clusterIP: None: DNS names the pods themselves, clients use the container's port
    text = DEPLOYMENT.replace("  selector: {app: api}\n", "  clusterIP: None\n  selector: {app: api}\n")
    found = objects(service_ports(text, "[{port: 80, targetPort: 8080}]"))
    pods = translate(found, workdir=tmp_path)
    assert pods[0].containers[0].aliases == ["api-server"]
    assert forwarder_plans(found, pods) == []


def test_a_service_that_selects_no_pod_still_gets_its_forwarder(tmp_path: Path) -> None:
    # `http://api-server` resolves and refuses connections, as a Service without endpoints does
    text = service_ports(
        DEPLOYMENT.replace("selector: {app: api}\n", "selector: {app: nothing}\n"),
        "[{port: 80, targetPort: 8080}]",
    )
    found = objects(text)
    pods = translate(found, workdir=tmp_path)
    assert pods[0].containers[0].aliases == []
    assert forwarder_plans(found, pods) == [ForwarderPlan("api-server", "demo", BACKEND, ((80, 8080),))]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            service_ports(DEPLOYMENT, "[{port: 80, targetPort: web}]"),
            "targetPort 'web' names no container port of the pods it selects",
        ),
        (
            DEPLOYMENT.replace("  selector: {app: api}\n", "  type: NodePort\n  selector: {app: api}\n"),
            "type NodePort is not supported by the docker target (ClusterIP is)",
        ),
        (
            service_ports(DEPLOYMENT, "[{port: 80, targetPort: 8080, protocol: SCTP}]"),
            "port 80 is SCTP: the docker target maps only TCP ports to a different targetPort",
        ),
        (  # a second workload whose `http` is another number, behind the same Service
            DEPLOYMENT
            + "---\n"
            + DEPLOYMENT.split("---\n")[2]
            .replace("name: api, namespace", "name: api2, namespace")
            .replace("containerPort: 8080", "containerPort: 9090"),
            "targetPort 'http' is 8080 or 9090 in the pods it selects",
        ),
    ],
)
def test_what_a_service_asks_that_the_docker_target_cannot_map_is_refused(
    tmp_path: Path, text: str, problem: str
) -> None:
    with pytest.raises(StagegateError) as caught:
        translate(objects(text), workdir=tmp_path)
    [found] = caught.value.subject["unsupported"]
    assert problem in found


def test_the_same_services_pass_when_their_ports_can_be_mapped(tmp_path: Path) -> None:
    # the passing twins of the refusals above: a declared name, ClusterIP, TCP, one number
    for text in (
        service_ports(DEPLOYMENT, "[{port: 80, targetPort: http}]"),
        DEPLOYMENT.replace("  selector: {app: api}\n", "  type: ClusterIP\n  selector: {app: api}\n"),
        service_ports(DEPLOYMENT, "[{port: 80, targetPort: 8080, protocol: TCP}]"),
        service_ports(DEPLOYMENT, "[{port: 8080, targetPort: 8080, protocol: UDP}]"),
        DEPLOYMENT
        + "---\n"
        + DEPLOYMENT.split("---\n")[2].replace("name: api, namespace", "name: api2, namespace"),
    ):
        translate(objects(text), workdir=tmp_path)


def test_probes_resolve_named_ports_and_their_ports_are_published(tmp_path: Path) -> None:
    text = DEPLOYMENT.replace(
        "readinessProbe: {httpGet: {path: /healthz, port: http}}",
        "readinessProbe: {httpGet: {path: /healthz, port: http}}\n"
        "          livenessProbe: {tcpSocket: {port: 9090}}\n"
        "          startupProbe: {exec: {command: [true]}}",
    )
    api = translate(objects(text), workdir=tmp_path)[0].containers[0]
    assert api.probe("readinessProbe")["httpGet"]["port"] == 8080
    assert api.probe("livenessProbe")["tcpSocket"]["port"] == 9090
    assert api.probe("startupProbe") == {"exec": {"command": [True]}}
    assert api.published == [8080, 9090]
    assert api.spec["readinessProbe"]["httpGet"]["port"] == "http"  # the pod spec shows it as written
    with pytest.raises(StagegateError, match="names port 'metrics', which it does not declare"):
        translate(
            objects(text.replace("tcpSocket: {port: 9090}", "tcpSocket: {port: metrics}")), workdir=tmp_path
        )


def test_namespaces_of_a_deploy_leave_out_cluster_scoped_objects() -> None:
    # a CRD (or a cluster-scoped custom resource) names no namespace: it is not in "default"
    from stagegate.manifests import ManifestObject
    from stagegate.targets import namespaces

    def obj(kind: str, namespace: str | None = None, **spec: object) -> ManifestObject:
        metadata = {"name": kind.lower(), **({"namespace": namespace} if namespace else {})}
        return ManifestObject("k8s", {"kind": kind, "metadata": metadata, "spec": spec})

    crd = obj("CustomResourceDefinition", scope="Cluster", names={"kind": "Tenant"})
    objects = [obj("Namespace"), crd, obj("Tenant"), obj("ClusterRole"), obj("Deployment", "shop")]
    assert namespaces(objects) == ["shop"]
    assert namespaces([*objects, obj("ConfigMap")]) == ["default", "shop"]
