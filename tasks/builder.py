"""Image builders behind one interface, detected in this order: the buildx plugin (BuildKit);
else a Docker client that runs BuildKit itself (clients before 23.0 with ``DOCKER_BUILDKIT=1``,
as distribution packages often ship); else the legacy builder.

Both go through the ``python_on_whales.DockerClient`` they are given, write the command's
output to the build log, and turn a failed build into :class:`BuildFailure`, whose
:func:`parse_build_failure` finds the failing step, its Dockerfile line and the exit code of a
failed ``RUN``, and the failing step's own last lines of output (:func:`failing_step_output`: what
a person reads under the ``✗`` line). The Docker CLI's texts are scrubbed
(:func:`stagegate.redact.redact`) where they enter: the log, and the argv and output a
:class:`BuildFailure` keeps — a dropped connection's error carries the whole request URL, build
args included. The log keeps the builder's escapes and carriage returns (the raw record); the
details parsed from it are without them."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TextIO

from . import engine
from .dockerclient import docker_argv
from .dockerfile import Dockerfile, Instruction
from .redact import redact, redact_argv, strip_escapes
from .runner import BANNER, last_line

if TYPE_CHECKING:  # imported where a build runs: a run with nothing to build never needs it
    from python_on_whales import DockerClient
    from python_on_whales.client_config import Command

    from .dockerclient import DeferredDockerClient

# What the CLI says when it has no engine to talk to: none at the start ("Cannot connect"),
# or the connection died under a running build ("error during connect: Post …/build?…: EOF",
# see tests/fixtures/build-output/legacy-connection-dropped.txt; buildx: the gRPC stream).
DAEMON_GONE = (
    "Cannot connect to the Docker daemon",
    "error during connect:",
    "failed to receive status: rpc error: code = Unavailable",
)


@dataclass(frozen=True)
class BuildSecret:
    """A BuildKit secret: ``RUN --mount=type=secret,id=<id>`` reads it from ``env`` (the name
    of an environment variable) or ``src`` (a file)."""

    id: str
    env: str | None = None
    src: Path | None = None

    def flag(self) -> str:
        return f"id={self.id},env={self.env}" if self.env else f"id={self.id},src={self.src}"


@dataclass(frozen=True)
class BuildRequest:
    context: Path
    dockerfile: Path
    tags: list[str]
    build_args: Mapping[str, str]
    labels: Mapping[str, str]
    target: str | None = None
    platforms: tuple[str, ...] = ()
    secrets: tuple[BuildSecret, ...] = ()
    secret_env: Mapping[str, str] = field(default_factory=dict)  # values of the secrets' env vars
    pull: bool = False
    no_cache: bool = False
    cache_from: tuple[str, ...] = ()  # images to take layers from (the registry's previous one)


class BuildFailure(Exception):
    """``docker build`` failed; keeps argv, exit code and the full output."""

    def __init__(self, argv: list[str], exit_code: int, output: str) -> None:
        self.argv = redact_argv(argv)
        self.exit_code = exit_code
        self.output = redact(output)
        super().__init__(f"build failed with exit code {exit_code}")

    @property
    def daemon_down(self) -> bool:
        """The engine did not answer or went away: not the Dockerfile's fault."""
        return any(marker in self.output for marker in DAEMON_GONE)


class Builder(Protocol):
    name: str

    def build(self, request: BuildRequest, log: TextIO) -> str:
        """Build and return the image ID; :class:`BuildFailure` when the build fails."""
        ...


def builder_name(docker: DockerClient | DeferredDockerClient, client_version: str | None = None) -> str:
    """The one decision of which builder a run uses: buildx when the plugin is installed; else
    the client's own BuildKit when it has one (:func:`client_runs_buildkit`; the client's
    version is asked only then, unless given); else the legacy builder."""
    if engine.buildx_installed(docker_argv(docker)):
        return BuildxBuilder.name
    if client_version is None:
        client_version = engine.version(docker_argv(docker), timeout=30).client or ""
    if client_runs_buildkit(client_version):
        return ClientBuildKitBuilder.name
    return LegacyBuilder.name


def detect_builder(docker: DockerClient, client_version: str | None = None) -> Builder:
    """The builder :func:`builder_name` decides on."""
    return BUILDERS[builder_name(docker, client_version)](docker)


def client_runs_buildkit(version: str) -> bool:
    """Docker clients from 18.09 to before 23.0 run BuildKit themselves with
    ``DOCKER_BUILDKIT=1``; from 23.0 on, ``docker build`` hands BuildKit to the buildx plugin
    (without it, "BuildKit is enabled but the buildx component is missing")."""
    match = re.match(r"^v?(\d+)\.(\d+)", version.strip())
    if not match:
        return False
    major, minor = int(match.group(1)), int(match.group(2))
    return (18, 9) <= (major, minor) < (23, 0)


@dataclass
class LegacyBuilder:
    """``docker build`` without BuildKit: works wherever a Docker engine does."""

    docker: DockerClient
    name: str = field(default="legacy", init=False)

    def build(self, request: BuildRequest, log: TextIO) -> str:
        from python_on_whales.exceptions import DockerException

        # python-on-whales' own runner (the one DockerClient uses: same evidence on failure);
        # ``legacy_build`` has no ``force_rm`` parameter, so the argv is built here.
        from python_on_whales.utils import run as _run_docker

        try:
            image_id = _run_docker(legacy_build_argv(self.docker, request)).splitlines()[-1].strip()
        except DockerException as exc:
            output = (exc.stdout or "") + (exc.stderr or "")
            log.write(
                redact(
                    f"$ {' '.join(map(str, exc.docker_command))}\n{output}\n[exit code {exc.return_code}]\n"
                )
            )
            raise BuildFailure([str(a) for a in exc.docker_command], exc.return_code, output) from None
        log.write(f"docker build (legacy builder) {request.context} -f {request.dockerfile}\n")
        log.write(f"Successfully built {image_id}\ntags: {', '.join(request.tags)}\n")
        return image_id


def legacy_build_argv(docker: DockerClient, request: BuildRequest) -> Command:
    """``docker build`` with the client's own connection flags, as ``legacy_build`` builds it,
    plus ``--force-rm``: the intermediate container of a failed step (it holds the build args)
    is removed too, not left behind. ``--quiet`` is the mode in which the output of a failed
    build is captured (the legacy builder then prints every step to stderr)."""
    from python_on_whales.client_config import Command

    argv = Command(docker.client_config.docker_cmd)
    argv += ["build", "--quiet", "--force-rm"]
    argv.add_args_mapping("--build-arg", dict(request.build_args))
    argv.add_args_mapping("--label", dict(request.labels))
    argv.add_simple_arg("--file", request.dockerfile)
    argv.add_args_iterable_or_single("--tag", request.tags)
    _common_flags(argv, request)
    argv.append(request.context)
    return argv


def _common_flags(argv: Command, request: BuildRequest) -> None:
    """``--target``, ``--pull``, ``--no-cache``, ``--cache-from``: the same for every builder
    (an image named by ``--cache-from`` that does not exist is passed over, never an error)."""
    argv.add_simple_arg("--target", request.target)
    argv.add_flag("--pull", request.pull)
    argv.add_flag("--no-cache", request.no_cache)
    argv.add_args_iterable_or_single("--cache-from", list(request.cache_from))


def _inline_cache(request: BuildRequest) -> dict[str, str]:
    """BuildKit: with a layer cache to read, the image built carries its own cache metadata
    (``BUILDKIT_INLINE_CACHE``), so that once pushed it serves the next build as one. Not an
    input of the image: its content does not change."""
    return {"BUILDKIT_INLINE_CACHE": "1"} if request.cache_from else {}


@dataclass
class ClientBuildKitBuilder:
    """``docker build --progress=plain`` with ``DOCKER_BUILDKIT=1`` on a client that runs
    BuildKit itself: streamed into the log line by line, the image ID from ``--iidfile``.
    Secrets reach it as ``--secret id=…,env=…|src=…``; their values only through the
    environment of the command, never its argv."""

    docker: DockerClient
    name: str = field(default="buildkit-client", init=False)

    def build(self, request: BuildRequest, log: TextIO) -> str:
        from python_on_whales.exceptions import DockerException
        from python_on_whales.utils import stream_stdout_and_stderr as _stream_docker

        with tempfile.TemporaryDirectory(prefix="stagegate-iid-") as scratch:
            iidfile = Path(scratch) / "iid"
            argv = client_buildkit_argv(self.docker, request, iidfile)
            env = {"DOCKER_BUILDKIT": "1", **request.secret_env}
            log.write(redact(f"$ DOCKER_BUILDKIT=1 {' '.join(map(str, argv))}\n"))
            output: list[str] = []
            try:
                for _, raw in _stream_docker(argv, env=env):
                    line = redact(raw.decode(errors="replace"))
                    output.append(line)
                    log.write(line if line.endswith("\n") else line + "\n")
            except DockerException as exc:
                log.write(f"\n[exit code {exc.return_code}]\n")
                raise BuildFailure([str(a) for a in argv], exc.return_code, "".join(output)) from None
            return iidfile.read_text().strip()


def client_buildkit_argv(docker: DockerClient, request: BuildRequest, iidfile: Path) -> Command:
    from python_on_whales.client_config import Command

    argv = Command(docker.client_config.docker_cmd)
    argv += ["build", "--progress=plain", "--iidfile", str(iidfile)]
    argv.add_args_mapping("--build-arg", {**request.build_args, **_inline_cache(request)})
    argv.add_args_mapping("--label", dict(request.labels))
    argv.add_simple_arg("--file", request.dockerfile)
    argv.add_args_iterable_or_single("--tag", request.tags)
    argv.add_args_iterable_or_single("--secret", [secret.flag() for secret in request.secrets])
    if request.platforms:
        argv.add_simple_arg("--platform", ",".join(request.platforms))
    _common_flags(argv, request)
    argv.append(request.context)
    return argv


@dataclass
class BuildxBuilder:
    """``docker buildx build --load`` with plain progress, streamed into the log."""

    docker: DockerClient
    name: str = field(default="buildx", init=False)

    def build(self, request: BuildRequest, log: TextIO) -> str:
        from python_on_whales.exceptions import DockerException

        try:
            lines = self.docker.build(
                request.context,
                file=request.dockerfile,
                tags=request.tags,
                build_args={**request.build_args, **_inline_cache(request)},
                labels=dict(request.labels),
                cache_from=[{"type": "registry", "ref": ref} for ref in request.cache_from] or None,
                load=True,
                progress="plain",
                stream_logs=True,
                target=request.target,
                platforms=list(request.platforms) or None,
                secrets=[secret.flag() for secret in request.secrets],
                pull=request.pull,
                cache=not request.no_cache,
            )
            for line in lines:  # type: ignore[union-attr]
                log.write(redact(line if line.endswith("\n") else line + "\n"))
        except DockerException as exc:
            output = (exc.stdout or "") + (exc.stderr or "")
            log.write(f"\n[exit code {exc.return_code}]\n")
            raise BuildFailure([str(a) for a in exc.docker_command], exc.return_code, output) from None
        return self.docker.image.inspect(request.tags[0]).id


@dataclass(frozen=True)
class FailureDetails:
    """Where a build broke, as far as its output tells."""

    line: int | None = None
    instruction: str | None = None
    exit_code: int | None = None  # of a failed RUN
    reason: str = ""  # the builder's own one-line error
    output: tuple[str, ...] = ()  # the failing step's last lines (see failing_step_output)


_LEGACY_STEP = re.compile(r"^Step (\d+)/\d+ : (.*)$", re.MULTILINE)
_LEGACY_RUN_EXIT = re.compile(r"returned a non-zero code: (\d+)")
_BUILDKIT_LOCATION = re.compile(r"^(?P<file>[^\s:]+):(?P<line>\d+)\n-{4,}$", re.MULTILINE)
_BUILDKIT_RUN_EXIT = re.compile(r"did not complete successfully: exit code: (\d+)")
_BUILDKIT_ERROR = re.compile(r"^(?:ERROR|error): (.*)$", re.MULTILINE)
# BuildKit of clients before 23.0 names the failing step, not its line:
#  " > [build 2/3] RUN make:" and "executor failed running [/bin/sh -c make]: exit code: 2"
_BUILDKIT_STEP = re.compile(r"^ > \[(?:[^\]]*?\s)?\d+/\d+\] (?P<text>.*):$", re.MULTILINE)
_BUILDKIT_EXECUTOR_EXIT = re.compile(r"executor failed running \[.*\]: exit code: (\d+)")
_PARSE_ERROR_LINE = re.compile(r"dockerfile parse error line (\d+):")


def parse_build_failure(output: str, dockerfile: Dockerfile) -> FailureDetails:
    """Map a failed build's output back to the Dockerfile: line, instruction, RUN exit code,
    and the failing step's last lines of output."""
    details = _locate_failure(strip_escapes(output), dockerfile)
    return replace(details, output=failing_step_output(output))


def _locate_failure(output: str, dockerfile: Dockerfile) -> FailureDetails:
    location = _BUILDKIT_LOCATION.search(output)
    if location:  # BuildKit prints the failing instruction's position itself
        line = int(location.group("line"))
        instruction = dockerfile.at_line(line)
        run_exit = _BUILDKIT_RUN_EXIT.search(output)
        reason = _BUILDKIT_ERROR.findall(output)
        return FailureDetails(
            line=line,
            instruction=instruction.text if instruction else None,
            exit_code=int(run_exit.group(1)) if run_exit else None,
            reason=reason[-1].strip() if reason else last_line(output),
        )
    parse_error = _PARSE_ERROR_LINE.search(output)
    if parse_error:
        line = int(parse_error.group(1))
        instruction = dockerfile.at_line(line)
        return FailureDetails(line, instruction.text if instruction else None, None, last_line(output))
    step = list(_BUILDKIT_STEP.finditer(output))
    if step:
        text = step[-1].group("text")
        instruction = dockerfile.find(text) or _expanded_match(dockerfile, text)
        run_exit = _BUILDKIT_EXECUTOR_EXIT.search(output) or _BUILDKIT_RUN_EXIT.search(output)
        return FailureDetails(
            line=instruction.line if instruction else None,
            instruction=instruction.text if instruction else text,
            exit_code=int(run_exit.group(1)) if run_exit else None,
            reason=last_line(output),
        )
    steps = _LEGACY_STEP.findall(output)
    run_exit = _LEGACY_RUN_EXIT.search(output)
    if steps:
        number, text = steps[-1]
        instruction = dockerfile.find(text) or dockerfile.step(int(number))
        after = output[output.rfind(f"Step {number}/") :]
        return FailureDetails(
            line=instruction.line if instruction else None,
            instruction=instruction.text if instruction else text,
            exit_code=int(run_exit.group(1)) if run_exit else None,
            reason=_reason_after_step(after),
        )
    return FailureDetails(reason=last_line(output))


def _expanded_match(dockerfile: Dockerfile, text: str) -> Instruction | None:
    """The instruction that BuildKit printed as ``text`` with its args expanded
    (``RUN echo $ARCH`` shown as ``RUN echo amd64``): each ``$X`` matches anything."""
    wanted = " ".join(text.split())
    for instruction in dockerfile.instructions:
        pattern = re.escape(" ".join(instruction.text.split()))
        pattern = re.sub(r"\\\$(?:\\\{[^}]*\\\}|\w+)", ".*", pattern)
        if "$" in instruction.text and re.fullmatch(pattern, wanted):
            return instruction
    return None


def _reason_after_step(section: str) -> str:
    """The builder's error line in the output of the failing step."""
    lines = [ln.strip() for ln in section.splitlines()[1:] if ln.strip()]
    for ln in reversed(lines):
        if not ln.startswith(("---> ", "Step ", "Sending build context")):
            return ln
    return lines[-1] if lines else ""


STEP_OUTPUT_LINES = 10
"""How many of the failing step's last lines of output are shown under the terminal's ``✗`` line
(and kept in error.json's ``subject.output``): enough for a compiler's error with the lines around
it or a failing test's assertion, few enough that the summary of the run (stage table, ``✗`` line,
hint, files) still fits one screen. The whole output is in the build log."""
STEP_LINE_CHARS = 300  # a longer line (minified code, a progress bar) is cut, marked with "…"

# BuildKit's plain progress: "#12 ERROR: …" ends the failing vertex, "#12 0.345 text" is its output.
_BUILDKIT_VERTEX_ERROR = re.compile(r"^#(\d+) ERROR: ", re.MULTILINE)
# The legacy builder's lines around a step's own output.
_LEGACY_RUNNING = " ---> Running in "
_LEGACY_FRAMING = (" ---> ", "Removing intermediate container ", "The command '")


def failing_step_output(output: str, lines: int = STEP_OUTPUT_LINES) -> tuple[str, ...]:
    """The last ``lines`` non-empty lines that the failing step's own command printed (the
    compiler's error, the failing test), without terminal escapes; none when the step ran no
    command (a ``COPY`` whose source is missing: the builder's reason says it all).

    BuildKit (plain progress): the lines of the vertex that reported ``ERROR``, not those of the
    other steps running beside it. Legacy builder: the lines after the last step's ``Running in``,
    without the builder's own framing."""
    raw = output.split("\n")  # not splitlines(): a carriage return rewrites its line, it does not end it
    failed = _BUILDKIT_VERTEX_ERROR.search(output)  # the first: steps cancelled after it come later
    if failed:
        prefix = re.compile(rf"^#{failed.group(1)} \d+\.\d+ (.*)$")
        found = [m.group(1) for m in map(prefix.match, raw) if m]
    else:
        found = _legacy_step_lines(raw)
    kept = [_shortened(text) for text in (strip_escapes(line).rstrip() for line in found) if text.strip()]
    return tuple(kept[-lines:]) if lines > 0 else ()


def _legacy_step_lines(raw: list[str]) -> list[str]:
    steps = [i for i, line in enumerate(raw) if _LEGACY_STEP.match(line)]
    if not steps:
        return []
    section = raw[steps[-1] + 1 :]
    ran = [i for i, line in enumerate(section) if line.startswith(_LEGACY_RUNNING)]
    if not ran:
        return []
    return [
        line
        for line in section[ran[0] + 1 :]
        if not strip_escapes(line).startswith(_LEGACY_FRAMING) and not any(n in line for n in BANNER)
    ]


def _shortened(line: str) -> str:
    return line if len(line) <= STEP_LINE_CHARS else line[: STEP_LINE_CHARS - 1] + "…"


#: Every builder by the name run.json records (preflight decides, build makes it).
BUILDERS: dict[str, Callable[[DockerClient], Builder]] = {
    builder.name: builder for builder in (BuildxBuilder, ClientBuildKitBuilder, LegacyBuilder)
}
