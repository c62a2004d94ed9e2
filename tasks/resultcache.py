"""The e2e result cache (``[tool.stagegate.e2e] cache = true``): when exactly the inputs of a
passing run come again, ``cluster``, ``deploy`` and ``e2e`` are not run; each is recorded as
passed from the cache, naming the run that passed.

The key is a SHA-256 over a canonical JSON of named parts (:func:`key_parts`): every image's
content (its image ID; on the existing target the registry digest it is pinned by), every
object of the rendered manifests as the run would apply it (images rewritten), the readiness
policy, the e2e command and its settings and requirements, the content of every file of the
e2e suite (:attr:`stagegate.config.E2EConfig.inputs`), the target kind and its cluster settings
(node image, kind config content, local registry), the profile, and stagegate's own version
with :data:`KEY_FORMAT`. A record keeps its parts, so that a miss can say what changed since
the nearest earlier pass (:func:`explain_miss`).

With the cache on, verify also reuses a smoke command's pass: the same command, entrypoint
and timeout in an image of the same ID passed in a run whose e2e passed (:func:`smoke_key`,
:func:`smoke_passes`), so a run with nothing changed starts no container at all.

Records are written only by an e2e stage that passed (:func:`store_pass`, the smoke passes of
its run with it): a failing or interrupted run never writes one. They live in a local cache directory (:func:`cache_dir`,
outside the artifacts dir: neither ``nox -s teardown`` nor a new run's clean-up of its
run-scoped files touches them) and, when ``[tool.stagegate.registry]`` is configured, in the
registry beside the images: a zero-layer image ``FROM scratch`` whose label holds the record,
at ``<registry>/stagegate-e2e-results:<key>`` (:class:`RegistryRecords`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, ValidationError

from . import runner
from .clock import iso
from .config import Config, RegistryConfig
from .errors import StagegateError
from .imagerecord import USABLE
from .ledger import stage_outputs, write_json_atomic
from .redact import redact_json

if TYPE_CHECKING:
    from .stages import StageContext

log = logging.getLogger(__name__)

#: Bump when what goes into the key, or how, changes: old records then never match.
KEY_FORMAT = 1
CACHE_ENV = "STAGEGATE_CACHE_DIR"
RECORDS_DIR = "e2e-results"
SMOKE_DIR = "smoke-results"
REGISTRY_REPOSITORY = "stagegate-e2e-results"
RECORD_LABEL = "dev.stagegate.e2e-result"
REGISTRY_TIMEOUT = 60.0
NEAREST_LOOKED_AT = 50  # local records compared when a miss is explained, newest first
# What running a suite writes into its own folder, and what no test reads as an input.
IGNORED_NAMES = frozenset({"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".git"})
IGNORED_SUFFIXES = (".pyc", ".pyo")


def stagegate_version() -> str:
    try:
        return metadata.version("stagegate")
    except metadata.PackageNotFoundError:  # run from a checkout that is not installed
        return "unknown"


def canonical(value: Any) -> str:
    """One JSON text per value: sorted keys, no spaces, UTF-8 as is."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class CacheKey:
    """The named parts of a run's inputs and their digest, the key."""

    parts: Mapping[str, Any]

    @property
    def digest(self) -> str:
        return _sha256(canonical({"key_format": KEY_FORMAT, "parts": dict(self.parts)}))


class PassRecord(BaseModel):
    """What a passing run leaves in the cache (and what a hit reads back, validated)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    key: str
    key_format: int = KEY_FORMAT
    parts: dict[str, Any]
    run_id: str
    passed_at: str
    git: dict[str, Any] = {}
    target: str | None = None
    tests: dict[str, Any] = {}

    def describe(self) -> str:
        return describe_reused(self.reused("local"))

    def reused(self, source: str) -> dict[str, Any]:
        """What run.json says of a stage passed from this record."""
        return {
            "run_id": self.run_id,
            "passed_at": self.passed_at,
            "git": self.git,
            "key": self.key,
            "source": source,
            "tests": self.tests,
        }


def describe_reused(reused: Mapping[str, Any]) -> str:
    """``run 20261128T200000Z-ab12cd (passed 2026-11-28T20:03:00Z, git 0123456789ab)``: the pass
    a stage reused, as run.json records it (:meth:`PassRecord.reused`)."""
    git = reused.get("git") or {}
    sha = (git.get("sha") or "unknown")[:12] + (" dirty" if git.get("dirty") else "")
    return f"run {reused.get('run_id')} (passed {reused.get('passed_at')}, git {sha})"


# -- the key ---------------------------------------------------------------------------------


def key_parts(
    config: Config,
    images: Mapping[str, Mapping[str, Any]],
    target: str,
    *,
    profile: str | None,
    context: str | None = None,
    version: str | None = None,
) -> dict[str, Any]:
    """The named inputs of cluster, deploy and e2e. ``images``: the build stage's outputs;
    ``target``: the run's target; ``context``: the existing target's kubeconfig context;
    ``version``: stagegate's (default: the installed package's)."""
    from . import manifests  # imported when a key is made: the reports need none of it

    parts: dict[str, Any] = {
        "stagegate": {"version": version or stagegate_version(), "key_format": KEY_FORMAT},
        "target": _target_part(config, target, context),
        "profile": profile,
    }
    refs: dict[str, str] = {}
    for name, entry in images.items():
        if entry.get("status") not in USABLE or not entry.get("ref"):
            continue
        pinned = (entry.get("registry") or {}).get("pinned")
        if target == "existing" and pinned:
            refs[name] = pinned
            parts[f"image {name}"] = pinned.rpartition("@")[2]
        else:
            refs[name] = entry["ref"]
            parts[f"image {name}"] = entry.get("image_id")
    if config.deploy is not None:
        objects = manifests.rewrite_images(
            manifests.render_sources(
                config.deploy.manifests, config.root, kustomize_args=config.deploy.kustomize_args
            ),
            refs,
        )
        names = []
        for obj in objects:
            name = f"manifest {obj.kind} {f'{obj.namespace}/' if obj.namespace else ''}{obj.name}"
            while name in parts:
                name += " (again)"
            names.append(name)
            parts[name] = _sha256(canonical(obj.doc))
        parts["manifest order"] = names
        policy = config.deploy.policy
        parts["readiness policy"] = {
            "timeout": policy.timeout,
            "poll_interval": policy.poll_interval,
            "crashloop_restarts": policy.crashloop_restarts,
            "unschedulable_grace": policy.unschedulable_grace,
        }
    if config.e2e is not None:
        e2e = config.e2e
        parts["e2e command"] = list(e2e.command)
        parts["e2e settings"] = {
            "requirements": list(e2e.requirements),
            "timeout": e2e.timeout,
            "allow_no_tests": e2e.allow_no_tests,
            "port_forward": [forward.entry() for forward in e2e.port_forward],
        }
        for relpath, digest in suite_files(config.root, e2e.inputs):
            parts[f"e2e file {relpath}"] = digest
    return parts


def _target_part(config: Config, target: str, context: str | None) -> dict[str, Any]:
    from .hashing import file_digest

    if target == "kind":
        settings = config.cluster
        kind_config = settings.kind_config
        return {
            "kind": "kind",
            "node_image": settings.node_image,
            "kind_config": file_digest(kind_config) if kind_config is not None else None,
            "local_registry": settings.local_registry_image if settings.local_registry else None,
        }
    if target == "existing":
        return {"kind": "existing", "context": context}
    return {"kind": target}


def suite_files(root: Path, inputs: Iterable[Path]) -> list[tuple[str, str]]:
    """``(path relative to root, digest)`` of every file of ``inputs`` (folders walked in
    name order, symbolic links by their target's name); what a test run writes there itself
    (``__pycache__``, ``.pytest_cache``, ``*.pyc``) is left out."""
    from .hashing import file_digest

    found: dict[str, str] = {}
    for path in inputs:
        if path.is_dir() and not path.is_symlink():
            for directory, folders, files in os.walk(path):
                folders[:] = sorted(f for f in folders if f not in IGNORED_NAMES)
                here = Path(directory)
                links = [f for f in folders if (here / f).is_symlink()]  # not walked into: hashed
                for name in sorted([*files, *links]):
                    if name in IGNORED_NAMES or name.endswith(IGNORED_SUFFIXES):
                        continue
                    found[(here / name).relative_to(root).as_posix()] = file_digest(here / name)
        elif path.exists() or path.is_symlink():
            found[path.relative_to(root).as_posix()] = file_digest(path)
    return sorted(found.items())


def explain_miss(parts: Mapping[str, Any], earlier: PassRecord, limit: int = 5) -> str:
    """What differs between ``parts`` and an earlier pass's: ``e2e file e2e/test_api.py
    changed, image x changed``."""
    changes = []
    for name in dict.fromkeys([*earlier.parts, *parts]):
        if name == "manifest order" and any(n.startswith("manifest ") for n in _differing(parts, earlier)):
            continue  # an object added or removed: said by its own part
        if name not in parts:
            changes.append(f"{name} removed")
        elif name not in earlier.parts:
            changes.append(f"{name} added")
        elif canonical(parts[name]) != canonical(earlier.parts[name]):
            changes.append(f"{name} changed")
    shown = ", ".join(changes[:limit]) + (f" and {len(changes) - limit} more" if len(changes) > limit else "")
    return f"{shown or 'nothing named changed (the key format did)'} since {earlier.describe()}"


def _differing(parts: Mapping[str, Any], earlier: PassRecord) -> list[str]:
    return [
        name
        for name in dict.fromkeys([*earlier.parts, *parts])
        if name != "manifest order"
        and canonical(parts.get(name, "<absent>")) != canonical(earlier.parts.get(name, "<absent>"))
    ]


# -- where records live ------------------------------------------------------------------------


def cache_dir(env: Mapping[str, str]) -> Path:
    """``$STAGEGATE_CACHE_DIR``, else ``$XDG_CACHE_HOME/stagegate``, else ``~/.cache/stagegate``."""
    if env.get(CACHE_ENV):
        return Path(env[CACHE_ENV]).expanduser().resolve()
    base = env.get("XDG_CACHE_HOME") or os.path.join(env.get("HOME") or os.path.expanduser("~"), ".cache")
    return Path(base).resolve() / "stagegate"


def _parse(text: str, key: str | None = None) -> PassRecord | None:
    try:
        record = PassRecord.model_validate_json(text)
    except ValidationError as exc:
        log.warning("an unreadable e2e result record is ignored: %s", exc.errors()[0].get("msg"))
        return None
    if record.key_format != KEY_FORMAT or (key is not None and record.key != key):
        return None
    return record


@dataclass(frozen=True)
class LocalRecords:
    """Records as files ``<dir>/<key>.json``."""

    directory: Path

    def find(self, key: str) -> PassRecord | None:
        try:
            text = (self.directory / f"{key}.json").read_text()
        except (FileNotFoundError, NotADirectoryError):
            return None
        return _parse(text, key)

    def store(self, record: PassRecord) -> None:
        write_json_atomic(self.directory / f"{record.key}.json", record.model_dump(mode="json"))

    def nearest(self, parts: Mapping[str, Any]) -> PassRecord | None:
        """The earlier pass that shares the most parts with ``parts`` (the newest of equals)."""
        try:
            files = sorted(self.directory.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
        except OSError:
            return None
        best: tuple[int, PassRecord] | None = None
        for path in files[:NEAREST_LOOKED_AT]:
            try:
                record = _parse(path.read_text())
            except OSError:
                continue
            if record is None:
                continue
            same = sum(
                1
                for n, v in parts.items()
                if n in record.parts and canonical(record.parts[n]) == canonical(v)
            )
            if best is None or same > best[0]:
                best = (same, record)
        return best[1] if best else None


class RegistryUnavailable(Exception):
    """The registry could not be asked or written (the run goes on without it)."""


@dataclass(frozen=True)
class RegistryRecords:
    """Records in the registry beside the images, through the user's Docker CLI (its
    credentials): a zero-layer image whose label :data:`RECORD_LABEL` holds the record. The
    local tag a lookup or a store makes is removed again."""

    docker: Sequence[str]
    registry: RegistryConfig

    def ref(self, key: str) -> str:
        return f"{self.registry.repository(REGISTRY_REPOSITORY)}:{key}"

    def find(self, key: str) -> PassRecord | None:
        ref = self.ref(key)
        pulled = self._docker("pull", "-q", ref, check=False)
        if pulled.exit_code != 0:
            if _not_in_registry(pulled.stderr):
                return None
            raise RegistryUnavailable(runner.last_line(pulled.stderr) or f"exit code {pulled.exit_code}")
        try:
            labels = json.loads(
                self._docker("image", "inspect", "--format", "{{json .Config.Labels}}", ref).stdout
            )
        finally:
            self._docker("image", "rm", ref, check=False)
        return _parse((labels or {}).get(RECORD_LABEL) or "", key)

    def store(self, record: PassRecord) -> str:
        ref = self.ref(record.key)
        label = f"{RECORD_LABEL}={canonical(redact_json(record.model_dump(mode='json')))}"  # as every writer
        try:
            self._docker("build", "-q", "-t", ref, "--label", label, "-", stdin="FROM scratch\n")
            self._docker("push", "-q", ref)
        finally:
            self._docker("image", "rm", ref, check=False)
        return ref

    def _docker(self, *args: str, check: bool = True, stdin: str | None = None) -> runner.Result:
        try:
            return runner.run([*self.docker, *args], timeout=REGISTRY_TIMEOUT, check=check, input=stdin)
        except runner.CommandFailed as exc:
            raise RegistryUnavailable(runner.last_line(exc.stderr) or exc.reason) from None


def _not_in_registry(stderr: str) -> bool:
    text = stderr.lower()
    return "manifest unknown" in text or ("not found" in text and "manifest" in text)


# -- the stages' side --------------------------------------------------------------------------


def smoke_key(image_id: str, command: Sequence[str], entrypoint: str | None, timeout_s: float) -> CacheKey:
    """What decides a smoke command's outcome: the image's content and how the command runs in it."""
    return CacheKey(
        {
            "smoke": {
                "image_id": image_id,
                "command": list(command),
                "entrypoint": entrypoint,
                "timeout_s": timeout_s,
            },
            "stagegate": {"version": stagegate_version()},
        }
    )


def smoke_passes(ctx: StageContext) -> LocalRecords | None:
    """The recorded smoke passes verify may reuse: with the cache on and no ``--no-cache``."""
    if ctx.config.e2e is None or not ctx.config.e2e.cache or ctx.options.no_cache:
        return None
    return LocalRecords(cache_dir(ctx.env) / SMOKE_DIR)


def lookup(ctx: StageContext, target: str) -> dict[str, Any] | None:
    """At the cluster stage, with the target chosen: what run.json says of a stage passed from
    the cache (None: run them), and ``ctx.outputs["result_cache"]``: the key and the lookup's
    outcome (``hit (local)``, ``miss`` with ``why``, ``skipped: --no-cache``). Nothing here
    fails the run: a key that cannot be made or a registry that does not answer is a warning."""
    if ctx.config.e2e is None or not ctx.config.e2e.cache:
        return None
    images = stage_outputs(ctx.run, "build").get("images") or {}
    profile = (ctx.run.get("profile") or {}).get("name")
    try:
        key = CacheKey(key_parts(ctx.config, images, target, profile=profile, context=_context(ctx, target)))
    except StagegateError as exc:  # deploy meets it again and reports it as its own failure
        ctx.reporter.warning(f"e2e result cache not used: {exc.message}")
        return None
    state: dict[str, Any] = {"key": key.digest}
    ctx.outputs["result_cache"] = state
    if ctx.options.no_cache:
        state["lookup"] = "skipped: --no-cache"
        return None
    local = LocalRecords(cache_dir(ctx.env) / RECORDS_DIR)
    record, source = local.find(key.digest), "local"
    if record is None and ctx.config.registry is not None:
        source = "registry"
        registry = RegistryRecords(_docker_argv(ctx), ctx.config.registry)
        try:
            record = registry.find(key.digest)
        except RegistryUnavailable as exc:
            ctx.reporter.warning(
                f"e2e result cache: {registry.ref(key.digest)} could not be looked up: {exc}"
            )
        if record is not None:
            with contextlib.suppress(OSError):  # found in the registry: kept here too, when it can be
                local.store(record)
    if record is None:
        earlier = local.nearest(key.parts)
        state["lookup"] = "miss"
        state["why"] = explain_miss(key.parts, earlier) if earlier else "no earlier pass is recorded"
        return None
    state["lookup"] = f"hit ({source})"
    return record.reused(source)


def reused_by_run(ctx: StageContext) -> dict[str, Any] | None:
    """For deploy and e2e: the pass the cluster stage of this run reused, if it did."""
    outputs = stage_outputs(ctx.run, "cluster")
    cached = outputs.get("cached")
    return cached if isinstance(cached, dict) else None


def passed_from_cache(ctx: StageContext, stage: str) -> bool:
    """For deploy and e2e: whether the cluster stage of this run reused a pass; when it did,
    ``stage`` records that pass as its outputs and says so."""
    if (reused := reused_by_run(ctx)) is None:
        return False
    ctx.outputs["cached"] = reused
    ctx.reporter.stage_started(stage, f"passed from the e2e result cache: {describe_reused(reused)}")
    return True


def store_pass(ctx: StageContext) -> None:
    """At the end of an e2e stage that passed: the record of this run under the key the
    cluster stage made — when the inputs are still those (a file edited during the run
    leaves no record)."""
    decided = stage_outputs(ctx.run, "cluster").get("result_cache") or {}
    if ctx.config.e2e is None or not ctx.config.e2e.cache or not decided.get("key"):
        return
    cluster = stage_outputs(ctx.run, "cluster")
    images = stage_outputs(ctx.run, "build").get("images") or {}
    profile = (ctx.run.get("profile") or {}).get("name")
    try:
        parts = key_parts(
            ctx.config,
            images,
            cluster["target"],
            profile=profile,
            context=(cluster.get("cluster") or {}).get("context"),
        )
    except StagegateError as exc:
        ctx.reporter.warning(f"e2e result cache: no record written: {exc.message}")
        return
    key = CacheKey(parts)
    if key.digest != decided["key"]:
        ctx.reporter.warning("e2e result cache: the inputs changed during the run; no record written")
        ctx.outputs["result_cache"] = {
            "key": decided["key"],
            "stored": False,
            "why": "inputs changed during the run",
        }
        return
    record = PassRecord(
        key=key.digest,
        parts=dict(parts),
        run_id=str(ctx.run["run_id"]),
        passed_at=iso(ctx.clock.now()),
        git=ctx.run.get("git") or {},
        target=cluster.get("target"),
        tests={k: v for k, v in (ctx.outputs.get("tests") or {}).items() if k in ("total", "skipped", "ran")},
    )
    local = LocalRecords(cache_dir(ctx.env) / RECORDS_DIR)
    stored: dict[str, Any] = {"key": key.digest, "stored": True}
    try:
        local.store(record)
    except OSError as exc:  # the tests passed: a cache that cannot be written does not change that
        ctx.reporter.warning(f"e2e result cache: {local.directory} cannot be written: {exc}")
        stored["stored"] = False
    if ctx.config.registry is not None:
        registry = RegistryRecords(_docker_argv(ctx), ctx.config.registry)
        try:
            stored["registry"] = registry.store(record)
        except RegistryUnavailable as exc:
            ctx.reporter.warning(f"e2e result cache: {registry.ref(key.digest)} could not be pushed: {exc}")
    stored["smoke"] = _store_smoke_passes(ctx, record)
    ctx.outputs["result_cache"] = stored
    ctx.reporter.info(f"e2e result cache: this pass is recorded ({key.digest[:12]})")


def _store_smoke_passes(ctx: StageContext, passed: PassRecord) -> int:
    """The smoke commands this run ran and passed (verify keeps their keys), recorded with the
    e2e pass they belong to; how many."""
    verified = stage_outputs(ctx.run, "verify")
    records = LocalRecords(cache_dir(ctx.env) / SMOKE_DIR)
    count = 0
    for entry in (verified.get("images") or {}).values():
        smoke = entry.get("smoke") if isinstance(entry, dict) else None
        if not isinstance(smoke, dict) or not smoke.get("passed") or not smoke.get("key"):
            continue  # not run (reused, or the cache was off) or not passed
        try:
            records.store(passed.model_copy(update={"key": smoke["key"], "parts": smoke.get("parts") or {}}))
        except OSError as exc:
            ctx.reporter.warning(f"e2e result cache: {records.directory} cannot be written: {exc}")
            return count
        count += 1
    return count


def _context(ctx: StageContext, target: str) -> str | None:
    if target != "existing" or ctx.config.existing is None:
        return None
    from .targets.existing import check_context

    return check_context(ctx.config.existing, ctx.options.context)


def _docker_argv(ctx: StageContext) -> list[str]:
    from .dockerclient import docker_argv

    return docker_argv(ctx.docker)
