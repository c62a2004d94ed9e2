"""The docker target through the real stages on the real engine, with busybox workloads:
busybox `httpd` as a web server, Services as network aliases, probes, Secrets."""

from __future__ import annotations

import shutil
import sys

import pytest
from python_on_whales import DockerClient

from tests.conftest import Repo
from tests.integration.conftest import image_table, pipeline, run

pytestmark = pytest.mark.docker

WEB = """\
apiVersion: v1
kind: Namespace
metadata: {{name: demo}}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: settings, namespace: demo}}
data: {{GREETING: hello from a configmap}}
---
apiVersion: v1
kind: Secret
metadata: {{name: creds, namespace: demo}}
stringData: {{TOKEN: s3cret}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, namespace: demo}}
spec:
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      volumes:
        - name: www
          emptyDir: {{}}
      initContainers:
        - name: page
          image: {image}
          imagePullPolicy: IfNotPresent
          command: ["sh", "-c", "echo \\"$GREETING\\" > /www/index.html"]
          env:
            - name: GREETING
              valueFrom: {{configMapKeyRef: {{name: settings, key: GREETING}}}}
          volumeMounts: [{{name: www, mountPath: /www}}]
      containers:
        - name: web
          image: {image}
          imagePullPolicy: IfNotPresent
          command: {web_command}
          env:
            - name: TOKEN
              valueFrom: {{secretKeyRef: {{name: creds, key: {secret_key}}}}}
          ports: [{{name: http, containerPort: 8080}}]
          readinessProbe:
            {probe}
            periodSeconds: 1
          volumeMounts: [{{name: www, mountPath: /www}}]
---
apiVersion: v1
kind: Service
metadata: {{name: web, namespace: demo}}
spec:
  selector: {{app: web}}
  ports: [{{port: 8080, targetPort: http}}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: client, namespace: demo}}
spec:
  selector: {{matchLabels: {{app: client}}}}
  template:
    metadata: {{labels: {{app: client}}}}
    spec:
      containers:
        - name: client
          image: {image}
          imagePullPolicy: IfNotPresent
          command: ["sleep", "3600"]
          readinessProbe:
            exec: {{command: {client_probe}}}
            periodSeconds: 1
"""
CLIENT_PROBE = '["sh", "-c", "wget -qO- http://web:8080/index.html | grep -q configmap"]'

HTTPD = '["httpd", "-f", "-p", "8080", "-h", "/www"]'
HTTP_PROBE = "httpGet: {path: /index.html, port: http}"
E2E = [
    sys.executable,
    "-c",
    "import os, urllib.request; body = urllib.request.urlopen(os.environ['STAGEGATE_URL_WEB'] + '/index.html').read();"
    " assert b'hello from a configmap' in body, body",
]


def stack(repo: Repo, ns: str, busybox_image: str, *, timeout: float = 30, **changes: str) -> None:
    values = {
        "image": f"{ns}/app",
        "web_command": HTTPD,
        "probe": HTTP_PROBE,
        "secret_key": "TOKEN",
        "client_probe": CLIENT_PROBE,
        **changes,
    }
    repo.write("app/Dockerfile", f"FROM {busybox_image}\nRUN mkdir /www\n")
    repo.write("k8s/app.yaml", WEB.format(**values))
    e2e = "[" + ", ".join(f"'{a}'" if "'" not in a else f'"{a}"' for a in E2E) + "]"
    repo.config(
        'target = "docker"\n'
        + image_table(ns, ("app", "app"))
        + f'[tool.stagegate.cluster]\nname = "{ns}"\n'
        + '[tool.stagegate.deploy]\nmanifests = "k8s"\nexternal_images = ["stagegate-test/absent"]\n'
        + f"poll_interval = 0.3\ntimeout = {timeout}\n"
        + f"[tool.stagegate.e2e]\ncommand = {e2e}\n"
    )


def chain(repo: Repo, docker, reporter, *stages: str) -> int:
    code = pipeline(repo, docker=docker, reporter=reporter)
    for stage in ("verify", *stages):
        if code:
            return code
        code = run(repo, stage, docker=docker, reporter=reporter)
    return code


def leftovers(docker: DockerClient, ns: str) -> list[str]:
    containers = docker.container.list(all=True, filters=[("label", f"dev.stagegate.project={ns}")])
    networks = docker.network.list(filters={"label": f"dev.stagegate.project={ns}"})
    return [c.name for c in containers] + [n.name for n in networks]


@pytest.fixture(autouse=True)
def _teardown(docker: DockerClient, ns: str, repo: Repo):
    yield
    from stagegate.targets.docker import DockerTarget

    DockerTarget(project=ns, artifacts=repo.artifacts, docker=docker).teardown(delete=True)


def test_the_stack_deploys_serves_through_its_service_and_passes_e2e(
    repo, docker, busybox_image, reporter, ns
):
    stack(repo, ns, busybox_image)
    assert chain(repo, docker, reporter, "cluster", "deploy", "e2e") == 0, reporter.console.file.getvalue()
    record = repo.run_record()
    assert record["target"] == "docker"
    assert record["stages"]["cluster"]["outputs"]["target_reason"] == "requested"
    # the client is ready only when `http://web:8080` answers inside the network with the page the
    # init container wrote into the shared emptyDir from the ConfigMap
    assert record["stages"]["deploy"]["outputs"]["readiness"]["ready_after_s"] > 0
    assert record["stages"]["e2e"]["outputs"]["tests"]["exit_code"] == 0
    plan = (repo.artifacts / "docker-plan.json").read_text()
    assert "s3cret" not in plan and "<redacted>" in plan
    assert leftovers(docker, ns) == []  # deleted after the passing e2e run
    # target-neutral wording: no kind cluster, no nodes on the docker target
    shown = reporter.console.file.getvalue()
    network = record["stages"]["cluster"]["outputs"]["cluster"]["cluster"]
    assert f"docker network {network}: created by stagegate" in shown
    assert f"✓ {ns}/app: in the Docker engine, where the docker target runs it (nothing to load)" in shown
    assert f"docker network {network} deleted" in shown
    assert "node" not in shown and f"cluster {network}" not in shown


def test_a_manifest_image_that_does_not_exist_is_image_pull_error(repo, docker, busybox_image, reporter, ns):
    stack(repo, ns, busybox_image)
    repo.write(
        "k8s/app.yaml",
        (repo.root / "k8s/app.yaml")
        .read_text()
        .replace(
            f'image: {ns}/app\n          imagePullPolicy: IfNotPresent\n          command: ["sleep"',
            'image: stagegate-test/absent:1\n          imagePullPolicy: IfNotPresent\n          command: ["sleep"',
        ),
    )
    assert chain(repo, docker, reporter, "cluster", "deploy") == 1
    error = repo.error()
    assert (error["stage"], error["code"]) == ("deploy", "IMAGE_PULL_ERROR")
    assert error["subject"]["image"] == "stagegate-test/absent:1"
    assert "not an image of this run" in error["subject"]["root_cause"]
    assert error["subject"]["polls"] == 1, error  # seen on the first poll: there from the apply on


def test_a_container_that_exits_is_crashloop_with_code_and_log(repo, docker, busybox_image, reporter, ns):
    # nothing else waits on it (the client does not probe it here): it cannot be converging
    stack(
        repo,
        ns,
        busybox_image,
        web_command='["sh", "-c", "echo dying now; exit 1"]',
        client_probe='["true"]',
    )
    assert chain(repo, docker, reporter, "cluster", "deploy") == 1
    error = repo.error()
    assert error["code"] == "CONTAINER_CRASHLOOP"
    assert (error["subject"]["container"], error["subject"]["exit_code"]) == ("web", 1)
    # it crashes after it started, so the poll that sees it varies; the margin is for a loaded
    # machine: well before the 30 s deadline, and no back-off (10 s, then 20 s) waited out
    assert error["subject"]["detected_after_s"] < 20, error
    logs = list((repo.root / error["subject"]["diagnostics"] / "containers").glob("*_web.log"))
    assert logs and "dying now" in logs[0].read_text()
    assert "dying now" in error["log_excerpt"]  # the container's last words, in error.json itself
    assert (repo.root / error["subject"]["diagnostics"] / "docker-plan.json").exists()
    [inspect] = (repo.root / error["subject"]["diagnostics"] / "containers").glob("*_web.inspect.json")
    assert "TOKEN=<redacted>" in inspect.read_text() and "s3cret" not in inspect.read_text()


def test_a_readiness_probe_that_never_passes_times_out_naming_it(repo, docker, busybox_image, reporter, ns):
    stack(repo, ns, busybox_image, timeout=3, probe="httpGet: {path: /missing.html, port: http}")
    assert chain(repo, docker, reporter, "cluster", "deploy") == 1
    error = repo.error()
    assert error["code"] == "READINESS_TIMEOUT"
    assert any(line.startswith("Deployment/web") for line in error["subject"]["not_ready"])


def test_a_missing_secret_key_is_container_config_error(repo, docker, busybox_image, reporter, ns):
    stack(repo, ns, busybox_image, secret_key="PASSWORD")
    assert chain(repo, docker, reporter, "cluster", "deploy") == 1
    error = repo.error()
    assert error["code"] == "CONTAINER_CONFIG_ERROR"
    assert error["subject"]["detail"] == "couldn't find key PASSWORD in Secret demo/creds"
    assert error["subject"]["polls"] == 1, error  # seen on the first poll: there from the apply on


def test_unsupported_kinds_and_volumes_are_refused_before_anything_starts(
    repo, docker, busybox_image, reporter, ns
):
    stack(repo, ns, busybox_image)
    text = (repo.root / "k8s/app.yaml").read_text()
    text = text.replace("emptyDir: {}", "hostPath: {path: /srv}")
    text += "---\napiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: data, namespace: demo}\nspec: {}\n"
    repo.write("k8s/app.yaml", text)
    assert chain(repo, docker, reporter, "cluster", "deploy") == 1
    error = repo.error()
    assert error["code"] == "MANIFEST_UNSUPPORTED"
    problems = "\n".join(error["subject"]["unsupported"])
    assert "kind PersistentVolumeClaim" in problems and "hostPath" in problems
    containers = docker.container.list(all=True, filters=[("label", f"dev.stagegate.project={ns}")])
    assert containers == []


def test_teardown_removes_exactly_what_the_run_created(repo, docker, busybox_image, reporter, ns):
    stack(repo, ns, busybox_image)
    bystander = docker.run(
        busybox_image, ["sleep", "60"], detach=True, labels={"dev.stagegate.project": "other"}
    )
    try:
        assert chain(repo, docker, reporter, "cluster", "deploy") == 0
        assert leftovers(docker, ns)
        from stagegate.cli import teardown

        assert teardown(repo.root) is None
        assert leftovers(docker, ns) == []
        assert docker.container.inspect(bystander.id).state.running
    finally:
        docker.container.remove(bystander, force=True)


def test_auto_chooses_docker_when_kind_is_missing_and_says_why(
    repo, docker, busybox_image, reporter, ns, tmp_path, monkeypatch
):
    stack(repo, ns, busybox_image)
    repo.write(
        "pyproject.toml",
        (repo.root / "pyproject.toml").read_text().replace('target = "docker"', 'target = "auto"'),
    )
    assert chain(repo, docker, reporter) == 0
    only_docker = tmp_path / "bin"
    only_docker.mkdir()
    (only_docker / "docker").symlink_to(shutil.which("docker"))
    monkeypatch.setenv("PATH", str(only_docker))
    assert run(repo, "cluster", docker=docker, reporter=reporter) == 0
    record = repo.run_record()
    assert record["target"] == "docker"
    assert record["stages"]["cluster"]["outputs"]["target_reason"] == "auto: kind is not on PATH"
    assert "target docker (auto: kind is not on PATH)" in reporter.console.file.getvalue()


def test_a_crash_while_what_it_waits_on_is_not_ready_converges_until_its_budget_is_spent(
    repo, docker, busybox_image, reporter, ns
):
    # the client's probe needs web, web keeps crashing: nothing tells "waiting on" from "broken"
    # but the restart budget, here 1 by annotation (the kubelet's first restart is at once, the
    # second after its 10 s back-off)
    stack(repo, ns, busybox_image, web_command='["sh", "-c", "echo dying now; exit 1"]')
    manifest = repo.root / "k8s" / "app.yaml"
    manifest.write_text(
        manifest.read_text().replace(
            "metadata: {labels: {app: web}}",
            "metadata: {labels: {app: web}, annotations: {stagegate.dev/restart-budget: '1'}}",
        )
    )
    assert chain(repo, docker, reporter, "cluster", "deploy") == 1
    error = repo.error()
    assert error["code"] == "CONTAINER_CRASHLOOP", error
    assert "restart budget of 1 is spent" in error["message"]
    assert error["subject"]["restarts"] == 2 and "dying now" in error["log_excerpt"]


RACE = """\
apiVersion: v1
kind: Namespace
metadata: {{name: race}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: database, namespace: race}}
spec:
  selector: {{matchLabels: {{app: database}}}}
  template:
    metadata: {{labels: {{app: database}}}}
    spec:
      containers:
        - name: db
          image: {image}
          imagePullPolicy: IfNotPresent
          command: ["sh", "-c", "sleep {delay}; echo up > /www/index.html; exec httpd -f -p 5432 -h /www"]
          ports: [{{containerPort: 5432}}]
          readinessProbe: {{tcpSocket: {{port: 5432}}, periodSeconds: 1}}
---
apiVersion: v1
kind: Service
metadata: {{name: database, namespace: race}}
spec: {{selector: {{app: database}}, ports: [{{port: 5432}}]}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: api, namespace: race}}
spec:
  selector: {{matchLabels: {{app: api}}}}
  template:
    metadata: {{labels: {{app: api}}}}
    spec:
      containers:
        - name: api
          image: {image}
          imagePullPolicy: IfNotPresent
          command: ["sh", "-c", "{script}"]
          ports: [{{containerPort: 8080}}]
          readinessProbe: {{tcpSocket: {{port: 8080}}, periodSeconds: 1}}
"""
DATABASE_DELAY = 4  # seconds until the database answers
CONVERGING_API = (
    "wget -qO- http://database:5432/index.html || { echo database not up yet; exit 1; }; "
    "echo api > /www/index.html; exec httpd -f -p 8080 -h /www"
)
BROKEN_API = "wget -qO- http://database:5432/index.html && echo connected; echo bad settings; exit 1"


def race_stack(repo: Repo, ns: str, busybox_image: str, script: str) -> None:
    stack(repo, ns, busybox_image, timeout=60)
    repo.write("k8s/app.yaml", RACE.format(image=f"{ns}/app", delay=DATABASE_DELAY, script=script))


def test_startup_race_that_converges_passes_without_waiting_out_the_back_off(
    repo, docker, busybox_image, reporter, ns
):
    race_stack(repo, ns, busybox_image, CONVERGING_API)
    assert chain(repo, docker, reporter, "cluster", "deploy") == 0, reporter.console.file.getvalue()
    readiness = repo.run_record()["stages"]["deploy"]["outputs"]["readiness"]
    assert readiness["restarted"] and readiness["restarted"][0].startswith("api-")
    # stagegate restarted the api once the database answered (`restarted`), instead of the
    # kubelet's back-off; ready no earlier than the database, and the bound a stated margin
    assert DATABASE_DELAY - 2 <= readiness["ready_after_s"] < 40, readiness
    assert "restarted pod api-" in " ".join(reporter.console.file.getvalue().split())


def test_startup_race_that_still_crashes_once_the_database_answers_is_fatal_at_once(
    repo, docker, busybox_image, reporter, ns
):
    race_stack(repo, ns, busybox_image, BROKEN_API)
    assert chain(repo, docker, reporter, "cluster", "deploy") == 1
    error = repo.error()
    assert error["code"] == "CONTAINER_CRASHLOOP", error
    assert error["subject"]["container"] == "api" and error["subject"]["exit_code"] == 1
    assert "crashed again after everything it could be waiting for was ready" in error["message"]
    assert "connected" in error["log_excerpt"] and "bad settings" in error["log_excerpt"]
    # the database's delay runs from its start during apply, the waiting clock from after apply
    # …and fatal on its next crash: spending its restart budget (5 restarts, back-off from 10 s
    # doubling) would take minutes; 20 s is a margin for a loaded machine
    assert DATABASE_DELAY - 2 <= error["subject"]["detected_after_s"] < DATABASE_DELAY + 20, error


def test_a_command_missing_from_the_image_is_fatal_at_once(repo, docker, busybox_image, reporter, ns):
    # on Kubernetes this is RunContainerError; the docker target's kubelet sees a StartError
    stack(
        repo, ns, busybox_image, web_command='["no-such-binary", "--port", "8080"]', client_probe='["true"]'
    )
    assert chain(repo, docker, reporter, "cluster", "deploy") == 1
    error = repo.error()
    assert error["code"] == "CONTAINER_CRASHLOOP", error
    assert "its command cannot run, so waiting cannot help" in error["message"]
    assert "not found or not executable" in error["hint"]
    assert error["subject"]["polls"] == 1, error  # seen on the first poll: there from the apply on


def test_crds_and_their_custom_resources_are_skipped_with_a_note_and_env_image_refs_rewritten(
    repo, docker, busybox_image, reporter, ns
):
    from tests.integration.test_kind_target import CRD_STACK

    stack(repo, ns, busybox_image, timeout=20)
    manifest = CRD_STACK.format(image=f"{ns}/app").replace(
        "          imagePullPolicy: IfNotPresent\n          env:",
        '          imagePullPolicy: IfNotPresent\n          command: ["sleep", "3600"]\n          env:',
    )
    repo.write("k8s/app.yaml", manifest)
    assert chain(repo, docker, reporter, "cluster", "deploy") == 0, reporter.console.file.getvalue()
    shown = " ".join(reporter.console.file.getvalue().split())
    assert (
        "skipped on the docker target" in shown and "widgets.example.com" in shown and "Widget/gear" in shown
    )
    apply = repo.run_record()["stages"]["deploy"]["outputs"]["apply"]
    assert len(apply["skipped"]) == 2
    assert any("widgets.example.com" in entry for entry in apply["skipped"])
    assert any("Widget/gear" in entry for entry in apply["skipped"])
    built = repo.run_record()["stages"]["build"]["outputs"]["images"][f"{ns}/app"]["ref"]
    [api] = [c for c in docker.container.list(filters=[("label", f"dev.stagegate.project={ns}")])]
    env = dict(entry.split("=", 1) for entry in docker.container.inspect(api.id).config.env)
    assert env["DRIVER_IMAGE"] == built  # `{ns}/app:ci` rewritten to this run's tag
    assert env["API_URL"] == "http://api:8080"  # not an image: untouched
