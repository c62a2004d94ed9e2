"""stagegate adopted the way a user adopts it (issue 13, point 7).

A throwaway git repository of another team — an api image built by a multi-stage Dockerfile
from the repository root, a migration image from its own folder, plain YAML manifests with a
Deployment, a Service, a Secret and a migration Job, a pytest e2e test that calls the api at
the address the e2e stage hands it (``STAGEGATE_URL_API``), and an invoke-style ``tasks.py`` at
its root — gets stagegate from ``pip install`` of a copy of this checkout into a fresh
virtualenv (no system site packages; pip fetches the dependencies from the package index), a
three-line noxfile and a ``[tool.stagegate]`` table: nothing else of stagegate's. Everything
runs through that virtualenv's own ``nox`` and ``python``, never this process's ``stagegate``.
Then ``stagegate init`` on a bare copy of the repository writes a config that passes preflight.

The images are ``FROM`` the busybox test image and are named after this test's folders
(``sgadopt-<hex>-api``), so they never meet another test's; the finalizer tears the
deployment down and removes them.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import textwrap
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from python_on_whales import DockerClient

from tests.conftest import ROOT
from tests.integration.conftest import ISOLATED

pytestmark = pytest.mark.docker

NOXFILE = "import stagegate.nox\n\nstagegate.nox.register()\n"
SESSIONS = (
    "preflight",
    "build",
    "verify",
    "cluster",
    "deploy",
    "e2e",
    "teardown",
    "prune",
    "report",
    "doctor",
    "init",
)


@dataclass
class Adopter:
    root: Path  # the other team's repository
    venv: Path  # the fresh virtualenv stagegate was pip-installed into
    prefix: str  # of its image names and folders

    def run(self, *argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        """A program of the virtualenv (``nox``, ``python``), with the user's environment:
        no PYTHONPATH (this test process's stagegate is not theirs), the virtualenv first on PATH."""
        # nor nox's own variables: a suite run by a re-executed nox (the noxfile's script block)
        # inherits NOX_SCRIPT_MODE=none, which would turn the user's script block off
        drop = (*ISOLATED, "NO_COLOR", "PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")
        env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("NOX_")}
        env["PATH"] = os.pathsep.join([str(self.venv / "bin"), env.get("PATH", "")])
        return subprocess.run(
            [str(self.venv / "bin" / argv[0]), *argv[1:]],
            cwd=cwd or self.root,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )


def git(cwd: Path, *args: str) -> None:
    identity = ["-c", "user.name=stagegate tests", "-c", "user.email=tests@stagegate.invalid"]
    subprocess.run(["git", *identity, *args], cwd=cwd, check=True, capture_output=True)


def write(root: Path, files: dict[str, str]) -> None:
    for relpath, text in files.items():
        path = root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))


def their_repository(root: Path, p: str, base: str) -> None:
    """The other team's repository, before stagegate: everything but pyproject's table and the noxfile."""
    write(
        root,
        {
            # invoke's convention; invoke is not installed, so importing it fails loudly
            "tasks.py": """
                from invoke import task


                @task
                def hello(c):
                    c.run("echo hello")
            """,
            # multi-stage, and it copies from the repository root: init must pick the root context
            f"{p}-api/Dockerfile": f"""
                FROM {base} AS build
                LABEL dev.stagegate.test={p}
                RUN mkdir -p /out && echo '{{"status": "ok"}}' > /out/health.json

                FROM {base}
                COPY --from=build /out/ /www/
                COPY {p}-api/start.sh /start.sh
                CMD ["sh", "/start.sh"]
            """,
            f"{p}-api/start.sh": """
                [ -n "$API_TOKEN" ] && echo '{"token": "delivered"}' > /www/token.json
                echo "api: serving on 8080"
                exec httpd -f -p 8080 -h /www
            """,
            f"{p}-migrate/Dockerfile": f"""
                FROM {base}
                COPY migrate.sh /migrate.sh
                CMD ["sh", "/migrate.sh"]
            """,
            f"{p}-migrate/migrate.sh": """
                tries=0
                until wget -q -O /dev/null http://api:8080/health.json; do
                    tries=$((tries + 1))
                    [ "$tries" -ge 30 ] && { echo "migrate: the api never answered"; exit 1; }
                    sleep 1
                done
                echo "migrate: schema up to date"
            """,
            "k8s/api.yaml": f"""
                apiVersion: apps/v1
                kind: Deployment
                metadata:
                  name: api
                spec:
                  selector:
                    matchLabels: {{app: api}}
                  template:
                    metadata:
                      labels: {{app: api}}
                    spec:
                      containers:
                        - name: api
                          image: {p}-api:dev
                          imagePullPolicy: IfNotPresent
                          env:
                            - name: API_TOKEN
                              valueFrom: {{secretKeyRef: {{name: api-token, key: token}}}}
                          ports: [{{name: http, containerPort: 8080}}]
                          readinessProbe: {{httpGet: {{path: /health.json, port: http}}, periodSeconds: 1}}
                ---
                apiVersion: v1
                kind: Service
                metadata:
                  name: api
                spec:
                  selector: {{app: api}}
                  ports: [{{port: 8080, targetPort: http}}]
            """,
            "k8s/secret.yaml": """
                apiVersion: v1
                kind: Secret
                metadata:
                  name: api-token
                stringData:
                  token: adoption-test-token-not-a-real-one
            """,
            "k8s/migrate-job.yaml": f"""
                apiVersion: batch/v1
                kind: Job
                metadata:
                  name: migrate
                spec:
                  backoffLimit: 2
                  template:
                    spec:
                      restartPolicy: Never
                      containers:
                        - name: migrate
                          image: {p}-migrate:dev
                          imagePullPolicy: IfNotPresent
            """,
            "e2e/test_api.py": """
                import json
                import os
                import urllib.request

                API = os.environ["STAGEGATE_URL_API"]


                def get(path):
                    with urllib.request.urlopen(API + path, timeout=5) as response:
                        return json.loads(response.read())


                def test_the_api_answers():
                    assert get("/health.json") == {"status": "ok"}


                def test_the_secret_reached_the_api():
                    assert get("/token.json") == {"token": "delivered"}
            """,
            "pyproject.toml": """
                [project]
                name = "their-service"
                version = "1.0.0"
            """,
        },
    )


def stagegate_table(p: str) -> str:
    return textwrap.dedent(f"""
        [tool.stagegate]

        [[tool.stagegate.images]]
        name = "{p}-api"
        context = "."
        dockerfile = "{p}-api/Dockerfile"

        [[tool.stagegate.images]]
        name = "{p}-migrate"
        context = "{p}-migrate"

        [tool.stagegate.deploy]
        manifests = "k8s"
        timeout = 90
        poll_interval = 0.5

        [tool.stagegate.e2e]
        command = ["pytest", "e2e", "-q", "-p", "no:cacheprovider"]
        requirements = ["pytest>=8"]
    """)


def sessions(listing: str) -> list[str]:
    """The session names of `nox -l` (``* name -> …`` selected, ``- name -> …`` not)."""
    return re.findall(r"^[*-] (\w+) ->", listing, re.MULTILINE)


def owned(docker: DockerClient, owner: str) -> list[str]:
    label = f"dev.stagegate.owner={owner}"
    containers = docker.container.list(all=True, filters=[("label", label)])
    networks = docker.network.list(filters=[("label", label)])
    volumes = docker.volume.list(filters=[("label", label)])
    return [c.name for c in containers] + [n.name for n in networks] + [v.name for v in volumes]


def make_venv(where: Path, *requirements: str) -> Path:
    """A fresh virtualenv (no system site packages) with ``pip install REQUIREMENTS``."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    python = shutil.which("python3") or "python3"
    subprocess.run([python, "-m", "venv", str(where)], check=True, env=env)
    installed = subprocess.run(
        [str(where / "bin" / "pip"), "install", "-q", *requirements],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if installed.returncode != 0:
        pytest.fail(
            f"pip install {' '.join(requirements)} failed (a package index must answer):\n{installed.stderr[-3000:]}"
        )
    return where


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of this checkout, what the user pip-installs (pip's build dirs land in the copy)."""
    source = tmp_path_factory.mktemp("adoption-install") / "stagegate-checkout"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "tasks", source / "tasks", ignore=shutil.ignore_patterns("__pycache__"))
    return source


@pytest.fixture(scope="module")
def venv(checkout: Path) -> Path:
    """``pip install <checkout>`` in a fresh virtualenv."""
    return make_venv(checkout.parent / "venv", str(checkout))


@pytest.fixture
def adopter(tmp_path: Path, venv: Path, docker: DockerClient, busybox_image: str) -> Iterator[Adopter]:
    p = f"sgadopt-{secrets.token_hex(4)}"
    root = tmp_path / "their-service"
    their_repository(root, p, busybox_image)
    with (root / "pyproject.toml").open("a") as pyproject:
        pyproject.write(stagegate_table(p))
    (root / "noxfile.py").write_text(NOXFILE)
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "their service, with stagegate")
    adopter = Adopter(root, venv, p)
    yield adopter
    for checkout in (root, tmp_path / "bare"):
        if (checkout / ".stagegate" / "owner.json").exists():
            adopter.run("nox", "-s", "teardown", "--", "--target", "docker", cwd=checkout)
    listed = docker.image.list(filters=[("reference", f"{p}-*")])
    tags = [t for image in listed for t in image.repo_tags if t.startswith(p + "-")]
    if tags:
        docker.image.remove(tags, force=True)
    # the legacy builder keeps the api's first stage as an untagged image (without the build's
    # labels): that stage carries a label of this repository, by which it is pruned
    docker.image.prune(filters=[("label", f"dev.stagegate.test={p}")])


def test_nothing_installs_a_top_level_tasks(adopter: Adopter) -> None:
    # the distribution's own record: every file it installed is under stagegate/ (or its metadata)
    listing = adopter.run(
        "python",
        "-c",
        "import importlib.metadata as m, json; d = m.distribution('stagegate');"
        "print(json.dumps([d.read_text('top_level.txt'), sorted({str(f).split('/')[0] for f in d.files})]))",
    )
    assert listing.returncode == 0, listing.stderr
    top_level, roots = json.loads(listing.stdout)
    assert top_level.split() == ["stagegate"]
    assert roots == ["stagegate", "stagegate-0.1.0.dist-info"]
    # outside their repository `tasks` is nothing at all ...
    elsewhere = adopter.run("python", "-c", "import tasks", cwd=adopter.venv)
    assert elsewhere.returncode == 1 and "ModuleNotFoundError: No module named 'tasks'" in elsewhere.stderr
    # ... and inside it, `tasks` is their invoke file (which needs invoke, not installed here)
    theirs = adopter.run("python", "-c", "import tasks")
    assert "ModuleNotFoundError: No module named 'invoke'" in theirs.stderr
    found = adopter.run(
        "python", "-c", "import importlib.util; print(importlib.util.find_spec('tasks').origin)"
    )
    assert found.stdout.strip() == str(adopter.root / "tasks.py")


def test_pip_install_a_three_line_noxfile_and_a_table_take_it_to_green_on_the_docker_target(
    adopter: Adopter, docker: DockerClient
) -> None:
    listed = adopter.run("nox", "-l")
    assert listed.returncode == 0, listed.stderr
    assert sessions(listed.stdout) == list(SESSIONS)

    result = adopter.run("nox", "--no-color", "-s", "e2e", "--", "--target", "docker")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    record = json.loads((adopter.root / ".stagegate" / "run.json").read_text())
    assert {name: stage["status"] for name, stage in record["stages"].items()} == dict.fromkeys(
        ("preflight", "build", "verify", "cluster", "deploy", "e2e"), "passed"
    )
    images = record["stages"]["build"]["outputs"]["images"]
    assert sorted(images) == [f"{adopter.prefix}-api", f"{adopter.prefix}-migrate"]
    readiness = record["stages"]["deploy"]["outputs"]["readiness"]
    assert readiness["jobs"]["Job/migrate"]["succeeded"] == 1, readiness
    assert "2 passed" in result.stdout + result.stderr
    said = (
        result.stdout
        + result.stderr
        + "".join(
            p.read_text(errors="replace") for p in (adopter.root / ".stagegate").rglob("*") if p.is_file()
        )
    )
    assert "adoption-test-token-not-a-real-one" not in said  # the Secret's value is never written

    owner = json.loads((adopter.root / ".stagegate" / "owner.json").read_text())["owner"]
    assert owned(docker, owner) == []  # a passing e2e run removes what it created
    assert "pip install 'pytest>=8'" in result.stderr  # the e2e session's virtualenv, set up

    # run again: the same requirements are not installed again; changed ones are
    again = adopter.run("nox", "--no-color", "-s", "e2e", "--", "--target", "docker")
    assert again.returncode == 0, again.stdout[-4000:] + again.stderr[-4000:]
    assert "pip install" not in again.stderr
    assert "e2e requirements already installed: pytest>=8" in again.stderr
    pyproject = adopter.root / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace('requirements = ["pytest>=8"]', 'requirements = ["pytest>=7"]')
    )
    changed = adopter.run("nox", "--no-color", "-s", "e2e", "--", "--target", "docker")
    assert changed.returncode == 0, changed.stdout[-4000:] + changed.stderr[-4000:]
    assert "pip install 'pytest>=7'" in changed.stderr

    down = adopter.run("nox", "--no-color", "-s", "teardown", "--", "--target", "docker")
    assert down.returncode == 0, down.stderr[-4000:]

    # a deployment left running (nox -s deploy stops there) is what teardown is for
    deployed = adopter.run("nox", "--no-color", "-s", "deploy", "--", "--target", "docker")
    assert deployed.returncode == 0, deployed.stdout[-4000:] + deployed.stderr[-4000:]
    assert owned(docker, owner)
    down = adopter.run("nox", "--no-color", "-s", "teardown")  # as the README says: run.json names the target
    assert down.returncode == 0, down.stderr[-4000:]
    assert owned(docker, owner) == []


def test_a_pep_723_script_block_naming_stagegate_is_satisfied_by_the_installed_one(adopter: Adopter) -> None:
    # With stagegate installed the running environment satisfies the block: nox does not
    # re-execute. (Without it, nox would resolve the bare name "stagegate" from PyPI, where an
    # unrelated project of that name lives: hence the direct reference of the next test.)
    block = '# /// script\n# dependencies = ["nox", "stagegate"]\n# ///\n'
    (adopter.root / "noxfile.py").write_text(block + NOXFILE)
    listed = adopter.run("nox", "-l")
    assert listed.returncode == 0, listed.stderr
    assert sessions(listed.stdout) == list(SESSIONS)
    assert not (adopter.root / ".nox" / "_nox_script_mode").exists()


def test_a_pep_723_script_block_with_a_direct_reference_installs_stagegate_itself(
    adopter: Adopter, checkout: Path
) -> None:
    # nox alone in the virtualenv, stagegate only in the noxfile's script block
    nox_only = make_venv(checkout.parent / "nox-only", "nox>=2025.02.09")
    block = f'# /// script\n# dependencies = ["nox", "stagegate @ {checkout.as_uri()}"]\n# ///\n'
    (adopter.root / "noxfile.py").write_text(block + NOXFILE)
    user = Adopter(adopter.root, nox_only, adopter.prefix)
    assert user.run("python", "-c", "import stagegate").returncode == 1
    listed = user.run("nox", "-l")
    assert listed.returncode == 0, listed.stderr[-3000:]
    assert sessions(listed.stdout) == list(SESSIONS)
    assert (adopter.root / ".nox" / "_nox_script_mode").is_dir()  # where nox installed it


def test_init_on_a_bare_copy_writes_a_config_that_passes_preflight(adopter: Adopter, tmp_path: Path) -> None:
    bare = tmp_path / "bare"
    their_repository(bare, adopter.prefix, "stagegate-test/busybox:1")
    git(bare, "init", "-q")
    before = (bare / "pyproject.toml").read_text()

    done = adopter.run("python", "-m", "stagegate", "init", cwd=bare)
    assert done.returncode == 0, done.stderr
    pyproject = (bare / "pyproject.toml").read_text()
    assert pyproject.startswith(before)
    table = tomllib.loads(pyproject)["tool"]["stagegate"]
    p = adopter.prefix
    assert table["images"] == [
        {"name": f"{p}-api", "context": ".", "dockerfile": f"{p}-api/Dockerfile"},  # it COPYs from the root
        {"name": f"{p}-migrate", "context": f"{p}-migrate"},
    ]
    assert table["deploy"] == {"manifests": "k8s"}
    assert table["e2e"]["command"] == ["pytest", "e2e", "-q", "-p", "no:cacheprovider"]
    assert (bare / "noxfile.py").read_text() == NOXFILE
    assert (bare / ".dockerignore").read_text().splitlines()[1:] == [".stagegate/", ".nox/"]

    preflight = adopter.run("nox", "--no-color", "-s", "preflight", cwd=bare)
    assert preflight.returncode == 0, preflight.stdout[-3000:] + preflight.stderr[-3000:]
    record = json.loads((bare / ".stagegate" / "run.json").read_text())
    assert record["stages"]["preflight"]["status"] == "passed"

    again = adopter.run("nox", "--no-color", "-s", "init", cwd=bare)
    assert again.returncode == 0, again.stderr
    assert "already configured" in again.stdout + again.stderr
    assert (bare / "pyproject.toml").read_text() == pyproject
