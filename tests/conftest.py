"""Shared fixtures: a real Docker client, tiny busybox images, scratch repositories, a
check that every error.json a test leaves behind validates against the shipped schema, a
check that the test run leaves nothing it created on the Docker engine, and the one way to
start a child process that a test will send a signal to (`signallable`)."""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import jsonschema
import pytest
from filelock import FileLock
from python_on_whales import DockerClient
from python_on_whales.components.image.cli_wrapper import ImageCLI
from python_on_whales.exceptions import DockerException
from rich.console import Console
from stagegate import runlock
from stagegate.builder import client_runs_buildkit
from stagegate.ui import Reporter

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((ROOT / "tasks" / "error.schema.json").read_text())
BUSYBOX_IMAGE = "stagegate-test/busybox:1"
T = TypeVar("T")
REQUIRE_DOCKER = os.environ.get("STAGEGATE_REQUIRE_DOCKER") == "1"
# One token per test run: every name a test gives to what it creates on the engine (images,
# and through them the containers, networks and volumes stagegate creates, which carry the
# image or project name) starts with TEST_PREFIX, so that two checkouts' runs on one engine
# never see each other's objects and the leak check below finds exactly this run's.
RUN_TOKEN = secrets.token_hex(3)
TEST_PREFIX = f"sgtest-{RUN_TOKEN}"
CLUSTER_PREFIX = f"sg{RUN_TOKEN}"  # kind cluster names of the tests (shorter: kind's limit)
# The Docker network of every (fake) kind node this run creates, in-process or in the nox
# sessions it starts (they inherit the environment): named after the run, so that the leak check
# sees it, and removed at the end of the run (kind itself never removes its network). Set in
# pytest_configure below: under pytest-xdist each worker is a run of its own (its own token).
KIND_NETWORK = f"{TEST_PREFIX}-kind"
REGISTRY_IMAGE = "stagegate-test/registry:2"
# A Dockerfile line for tests whose builds fail on purpose: the legacy builder keeps the image
# of each step before the failure (untagged: its build cache, which stagegate leaves alone as
# `docker build` does); the label lets the run remove them at its end and the leak check see them.
TEST_LABEL = f"dev.stagegate.test={TEST_PREFIX}"
LABEL_LINE = f"LABEL {TEST_LABEL}\n"
_ENGINE: list[DockerClient] = []  # the client of the `docker` fixture, once a test asked for it


# The signals tests send to the processes they start. A suite started in the background from a
# script (`cmd &`, as CI runners do) inherits SIGINT (and SIGQUIT) as ignored, and a child
# inherits that: Python then never raises KeyboardInterrupt, and a SIGINT the test sends is lost.
SIGNALS_TESTS_SEND = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def default_signal_dispositions() -> None:
    """In the child, before exec: the default disposition of every signal a test sends."""
    for signum in SIGNALS_TESTS_SEND:
        signal.signal(signum, signal.SIG_DFL)


def signallable(argv: list[str], **kwargs: Any) -> subprocess.Popen:
    """`subprocess.Popen` for a child a test will signal: it starts with the signals' default
    dispositions, whatever the test run inherited. Every test that sends a signal uses it."""
    return subprocess.Popen(argv, preexec_fn=default_signal_dispositions, **kwargs)


def validate_error_file(path: Path) -> dict:
    document = json.loads(path.read_text())
    jsonschema.validate(document, SCHEMA)
    return document


@pytest.fixture(autouse=True)
def _error_files_validate(tmp_path: Path) -> Iterator[None]:
    """Every error.json produced under a test's tmp_path must match tasks/error.schema.json."""
    yield
    for path in tmp_path.rglob("error.json"):
        validate_error_file(path)


@pytest.fixture(autouse=True)
def _run_locks_released() -> Iterator[None]:
    """A stage holds its artifacts dir's run lock for the life of the process; the test
    process gives each test's locks back when the test ends."""
    yield
    runlock.release_all()


@pytest.fixture(scope="session")
def docker() -> DockerClient:
    """A client of a running Docker engine; skip (or fail, in CI) without one."""
    client = DockerClient()
    try:
        client.version()
    except (DockerException, FileNotFoundError) as exc:
        message = f"no Docker engine answers: {str(exc).splitlines()[0]}"
        if REQUIRE_DOCKER:
            pytest.fail(message + " (STAGEGATE_REQUIRE_DOCKER=1 makes the Docker tests mandatory)")
        pytest.skip(message)
    _ENGINE.append(client)
    return client


def _busybox_binary() -> Path:
    for candidate in ("/bin/busybox", "/usr/bin/busybox"):
        if Path(candidate).is_file():
            return Path(candidate)
    pytest.skip("static busybox is not installed (Debian package busybox-static)")


@pytest.fixture(scope="session")
def busybox_image(docker: DockerClient, tmp_path_factory: pytest.TempPathFactory) -> str:
    """``stagegate-test/busybox:1``: FROM scratch + static busybox, built once (test runs side
    by side, pytest-xdist's workers among them, build it one at a time)."""
    with _one_at_a_time(tmp_path_factory, "busybox"):
        if not docker.image.exists(BUSYBOX_IMAGE):
            context = tmp_path_factory.mktemp("busybox")
            shutil.copy(_busybox_binary(), context / "busybox")
            (context / "Dockerfile").write_text(
                'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\n'
            )
            docker.legacy_build(context, tags=[BUSYBOX_IMAGE])
    return BUSYBOX_IMAGE


@contextlib.contextmanager
def _one_at_a_time(tmp_path_factory: pytest.TempPathFactory, what: str) -> Iterator[None]:
    """A lock shared by the test runs of this user (their temp dirs' parent): a shared image is
    built by one of them while the others wait, and then found."""
    with FileLock(tmp_path_factory.getbasetemp().parent / f"stagegate-tests-{what}.lock"):
        yield


def _docker_registry_binary() -> Path:
    found = shutil.which("docker-registry")
    if found is None:
        # CI (STAGEGATE_REQUIRE_DOCKER=1) must run the registry tests: a missing registry fails there
        (pytest.fail if REQUIRE_DOCKER else pytest.skip)(
            "docker-registry is not installed (apt-get install docker-registry; .ci/run does)"
        )
    return Path(found)


@pytest.fixture(scope="session")
def registry_image(docker: DockerClient, tmp_path_factory: pytest.TempPathFactory) -> str:
    """``stagegate-test/registry:2``: the image of a registry that behaves as the official
    ``registry:2`` (the CNCF distribution registry listening on :5000, storage in
    /var/lib/registry), built once from the seeded base image and Debian's docker-registry,
    which links against libc only. (No ``VOLUME`` as registry:2 has: a test's registry leaves
    no anonymous volume behind, whatever removes it.)"""
    with _one_at_a_time(tmp_path_factory, "registry-image"):
        return _registry_image(docker, tmp_path_factory)


def _registry_image(docker: DockerClient, tmp_path_factory: pytest.TempPathFactory) -> str:
    if not docker.image.exists(REGISTRY_IMAGE):
        context = tmp_path_factory.mktemp("registry")
        shutil.copy(_docker_registry_binary(), context / "docker-registry")
        (context / "config.yml").write_text(
            "version: 0.1\n"
            "storage:\n  filesystem:\n    rootdirectory: /var/lib/registry\n  delete:\n    enabled: true\n"
            "http:\n  addr: :5000\n"
        )
        base = os.environ.get("BASE_IMAGE", "python:3.12-slim")
        (context / "Dockerfile").write_text(
            f"FROM {base}\n"
            "COPY docker-registry /usr/bin/docker-registry\n"
            "COPY config.yml /etc/docker/registry/config.yml\n"
            "EXPOSE 5000\n"
            'ENTRYPOINT ["/usr/bin/docker-registry", "serve", "/etc/docker/registry/config.yml"]\n'
        )
        docker.legacy_build(context, tags=[REGISTRY_IMAGE])
    return REGISTRY_IMAGE


def buildkit_client() -> str | None:
    """A Docker CLI on PATH (or $STAGEGATE_TEST_BUILDKIT_DOCKER) that runs BuildKit builds
    without buildx (a client older than 23.0, such as Debian's own 20.10 beside the engine)."""
    named = os.environ.get("STAGEGATE_TEST_BUILDKIT_DOCKER")
    candidates = [named] if named else []
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        found = shutil.which("docker", path=directory)
        if found and found not in candidates:
            candidates.append(found)
    for candidate in candidates:
        try:
            version = DockerClient(client_call=[candidate]).version().client.version or ""
        except (DockerException, FileNotFoundError):
            continue
        if client_runs_buildkit(version):
            return candidate
    return None


class Repo:
    """A scratch repository: pyproject.toml with [tool.stagegate] and the files it names."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.artifacts = root / ".stagegate"

    def write(self, relpath: str, text: str) -> Path:
        path = self.root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
        return path

    def config(self, text: str) -> None:
        self.write("pyproject.toml", "[tool.stagegate]\n" + textwrap.dedent(text))

    def error(self) -> dict | None:
        path = self.artifacts / "error.json"
        return validate_error_file(path) if path.exists() else None

    def run_record(self) -> dict:
        return json.loads((self.artifacts / "run.json").read_text())


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    root = tmp_path / "repo"
    root.mkdir()
    return Repo(root)


@pytest.fixture
def reporter() -> Reporter:
    """A reporter printing into memory (``reporter.console.file.getvalue()``)."""
    return Reporter(Console(file=io.StringIO(), width=120, force_terminal=False))


def listed_meanwhile(list_them: Callable[[], list[T]]) -> list[T]:
    """A python-on-whales list call (`ls`, then one `inspect` of all it found) on an engine
    that other test runs use at the same time: retried when an object vanished in between."""
    for attempt in range(3):
        try:
            return list_them()
        except DockerException:
            if attempt == 2:
                raise
    return []


def _run_objects(client: DockerClient) -> list[str]:
    """What is on the engine that this test run created: containers, images, networks and
    volumes whose name, tag or label value carries this run's prefix. Objects that another
    process removes while they are listed are not there any more, so not leaked."""
    marks = (TEST_PREFIX, f"{CLUSTER_PREFIX}-")

    def ours(*texts: str | None) -> bool:
        return any(mark in (text or "") for text in texts for mark in marks)

    def each(listed, describe) -> list[str]:
        found = []
        for obj in listed:
            try:
                entry = describe(obj)
            except DockerException:
                continue  # removed meanwhile
            if entry:
                found.append(entry)
        return found

    def container(c) -> str | None:
        labels = c.config.labels or {}
        return f"container {c.name} ({c.state.status})" if ours(c.name, *labels.values()) else None

    def image(i) -> str | None:
        tags = [t for t in i.repo_tags if ours(t)]
        if tags:
            return f"image {', '.join(tags)}"
        if not i.repo_tags and ours(*(i.config.labels or {}).values()):
            return f"untagged image {i.id[:19]} (labels {i.config.labels})"
        return None

    return [
        *each(listed_meanwhile(lambda: client.container.list(all=True)), container),
        *each(listed_meanwhile(client.image.list), image),
        *each(listed_meanwhile(client.network.list), lambda n: f"network {n.name}" if ours(n.name) else None),
        *each(listed_meanwhile(client.volume.list), lambda v: f"volume {v.name}" if ours(v.name) else None),
    ]


def _remove_kind_network(client: DockerClient) -> None:
    """The run's kind network (when the run named it), once every node of the run is gone; one
    that still has containers stays, and the leak check names it with them."""
    if os.environ.get("KIND_EXPERIMENTAL_DOCKER_NETWORK") != KIND_NETWORK:
        return
    try:
        if client.network.exists(KIND_NETWORK):
            client.network.remove(KIND_NETWORK)
    except DockerException:
        pass


def remove_images(docker: DockerClient, *prefixes: str) -> None:
    """Every tag of the images named ``{ns}/…`` for each ``ns`` of ``prefixes``, now:
    ``docker image ls`` by reference pattern, so only these tests' images, whatever else the
    engine is doing meanwhile."""
    tagged = []
    for ns in dict.fromkeys(prefixes):
        listed = docker.image.list(filters=[("reference", f"{ns}/*")])
        tagged += [tag for image in listed for tag in image.repo_tags if tag.startswith(ns + "/")]
    if tagged:
        docker.image.remove(tagged, force=True)


_REMOVED_AT_THE_END: list[str] = []  # the image name prefixes of remove_images_at_the_end


def remove_images_at_the_end(ns: str) -> None:
    """Every tag of the images named ``{ns}/…``, removed at the end of this test run (process):
    a removal waits until no other process's test runs (see engine_alone), so the tests' own
    clean-ups give their images back in one removal at the end, not one each."""
    _REMOVED_AT_THE_END.append(ns)


def _remove_the_tests_images(docker: DockerClient) -> None:
    remove_images(docker, *_REMOVED_AT_THE_END)
    _REMOVED_AT_THE_END.clear()


def remove_failed_build_steps(client: DockerClient) -> None:
    """The untagged step images of this run's failing legacy builds (their Dockerfiles carry
    :data:`LABEL_LINE`). Only those: any other untagged image of the run is a leak."""
    listed = listed_meanwhile(lambda: client.image.list(filters={"dangling": "true", "label": TEST_LABEL}))
    for image in listed:
        with contextlib.suppress(DockerException):  # removed meanwhile, or in use: then a leak
            client.image.remove(image.id)


# Builds and image removals, across the processes of a test run (pytest-xdist's workers) and
# the runs of other checkouts: the legacy builder takes another build's intermediate image as
# its cache, and removing an image removes its untagged parents, so a removal in one process
# can pull a cache image from under a build in another ("unable to find image sha256:…").
# A test marked `docker` holds the engine lock shared for its whole life; removing images takes
# it alone (python-on-whales' image remove and prune, which stagegate in-process uses too).
_ENGINE_LOCK: list[int] = []  # the file descriptor, once a test asked for it
_ENGINE_HELD: list[int] = []  # the lock this process holds now: LOCK_SH, or nothing


def _engine_lock_fd() -> int:
    if not _ENGINE_LOCK:
        path = Path(tempfile.gettempdir()) / f"stagegate-tests-engine-{os.getuid()}.lock"
        _ENGINE_LOCK.append(os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600))
    return _ENGINE_LOCK[0]


@contextlib.contextmanager
def engine_alone() -> Iterator[None]:
    """No build of another process runs while this block removes images."""
    fd = _engine_lock_fd()
    held = list(_ENGINE_HELD)
    fcntl.flock(fd, fcntl.LOCK_UN)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(fd, held[0] if held else fcntl.LOCK_UN)


def _removing_images_alone(method: Callable[..., T]) -> Callable[..., T]:
    def alone(*args: Any, **kwargs: Any) -> T:
        with engine_alone():
            return method(*args, **kwargs)

    return alone


ImageCLI.remove = _removing_images_alone(ImageCLI.remove)  # type: ignore[method-assign]
ImageCLI.prune = _removing_images_alone(ImageCLI.prune)  # type: ignore[method-assign]


@pytest.fixture(autouse=True)
def _engine_shared(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test that uses the engine builds beside others, never beside a removal of images."""
    if request.node.get_closest_marker("docker") is None:
        yield
        return
    fd = _engine_lock_fd()
    fcntl.flock(fd, fcntl.LOCK_SH)
    _ENGINE_HELD.append(fcntl.LOCK_SH)
    try:
        yield
    finally:
        _ENGINE_HELD.clear()
        fcntl.flock(fd, fcntl.LOCK_UN)


_TERMINAL = ("COLUMNS", "LINES")


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """pytest-xdist, on the controller: the terminal size the run was started with, for its
    workers (a worker starts with COLUMNS=80 and LINES=24 whatever the run had)."""
    node.workerinput["stagegate_terminal"] = {name: os.environ.get(name) for name in _TERMINAL}


def pytest_configure(config: pytest.Config) -> None:
    """The kind network of this run, unless one was set before it. pytest-xdist's controller
    runs no test: its workers, each a run with its own token, set their own (they inherit the
    controller's environment, so the controller must not set one), and see the terminal size
    the run was started with, as a run without workers does."""
    worker = getattr(config, "workerinput", None)
    if getattr(config.option, "numprocesses", None) and worker is None:
        return
    for name, value in ((worker or {}).get("stagegate_terminal") or {}).items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    os.environ.setdefault("KIND_EXPERIMENTAL_DOCKER_NETWORK", KIND_NETWORK)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run when a container, image, network or volume it created is still there
    (checked when a test of the run used the engine)."""
    if os.environ.get("MUTANT_UNDER_TEST"):
        # mutmut (nox -s mutants) forks one pytest run per mutant after this module was
        # imported: runs side by side share TEST_PREFIX and would see each other's objects
        return
    if _REMOVED_AT_THE_END:  # a test may make its images with a client of its own
        _remove_the_tests_images(_ENGINE[0] if _ENGINE else DockerClient())
    if not _ENGINE:
        return
    _remove_kind_network(_ENGINE[0])
    remove_failed_build_steps(_ENGINE[0])
    leaked = _run_objects(_ENGINE[0])
    if not leaked:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    lines = [f"the test run left {len(leaked)} object(s) of its own ({TEST_PREFIX}*) on the engine:"]
    lines += [f"  {entry}" for entry in leaked]
    if reporter is not None:
        reporter.write_sep("=", "engine leak check failed", red=True)
        reporter.write_line("\n".join(lines))
    else:
        print("\n".join(lines))
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
