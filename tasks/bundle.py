"""The bundle: a run carried from one CI job to the next without a registry.

``--bundle-out DIR`` writes, when a pipeline stage ends (passed or failed), ``DIR/`` with one
``docker save`` archive of the run's built images (all of them in one file, so layers they
share are stored once; absent when no image was built), the run's ``run.json``, its
``error.json`` and ``junit.xml`` when a stage failed, and ``bundle.json``: the commit, the
fingerprint of the image configuration, every image's reference and ID, and each file's
size and SHA-256. The directory is replaced whole (written beside it, then renamed), and an
archive that already holds exactly the same images is kept instead of saved again, so that
every stage of ``nox -s e2e -- --bundle-out DIR`` leaves a complete bundle for little cost.

``--bundle-in DIR`` makes preflight, build and verify *taken from the bundle*
(:func:`take_stage`): nothing is built. The bundle must be whole (``BUNDLE_INVALID``) and of
this checkout's commit and image configuration (``BUNDLE_MISMATCH``). When its run failed in
one of those stages, the job fails at once — before any Docker call — with
``UPSTREAM_FAILED`` whose subject, log excerpt and ``cause`` are the bundle's own error (the
Dockerfile and line of a failed build reach this job's error.json, junit.xml, annotation and
job summary). Otherwise the build stage loads the archive and checks every image ID against
the record; the kind target puts the archive on the nodes that lack an image with a single
``kind load image-archive`` (:meth:`stagegate.targets.kind.KindTarget.load_archive`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pydantic
from pydantic import BaseModel, ConfigDict

from .clock import Clock, iso
from .config import Config
from .errors import Code, CommandEvidence, StagegateError
from .imagerecord import LOCAL
from .ledger import OK, PIPELINE, Ledger, stage_outputs, stage_record, write_json_atomic

if TYPE_CHECKING:
    from python_on_whales import DockerClient

    from .dockerclient import DeferredDockerClient
    from .stages import StageContext

log = logging.getLogger(__name__)

FORMAT = 1
MANIFEST = "bundle.json"
ARCHIVE = "images.tar"
#: The stages a run with ``--bundle-in`` takes from the bundle instead of running them.
TAKEN = ("preflight", "build", "verify")
#: The first stage such a run runs itself: where a failure of the bundle's run is recorded.
FIRST_OWN = PIPELINE[len(TAKEN)]
_CHUNK = 1 << 20


class BundledImage(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    ref: str
    image_id: str


class BundledFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    bytes: int
    sha256: str


class BundleManifest(BaseModel):
    """``bundle.json``: what the bundle holds and which run, commit and configuration made it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format: int
    run_id: str
    written_at: str
    git: dict[str, Any]
    config: str | None  # config_fingerprint(); None when the configuration did not load
    stages: dict[str, str]  # stage -> status, as the run left them
    images: list[BundledImage]
    files: dict[str, BundledFile]


@dataclass(frozen=True)
class Bundle:
    """An opened bundle: its manifest, run record and error record, all checked whole."""

    dir: Path
    manifest: BundleManifest
    run: dict[str, Any]
    error: dict[str, Any] | None

    @property
    def archive(self) -> Path | None:
        return self.dir / ARCHIVE if ARCHIVE in self.manifest.files else None

    def origin(self) -> dict[str, Any]:
        """What run.json says of a stage taken from this bundle."""
        return {
            "dir": str(self.dir),
            "run_id": self.manifest.run_id,
            "written_at": self.manifest.written_at,
            "git": self.manifest.git,
        }


class UpstreamInBundle(StagegateError):
    """``UPSTREAM_FAILED`` because the bundle's run failed before :data:`FIRST_OWN`: recorded
    as that stage's failure, with the bundle's stage records (``taken``) and error (``cause``)."""

    def __init__(self, error: StagegateError, taken: dict[str, dict[str, Any]], cause: dict | None) -> None:
        super().__init__(
            error.code,
            error.message,
            error.hint,
            error.subject,
            command=error.command,
            log_excerpt=error.log_excerpt,
        )
        self.taken = taken
        self.cause = cause


# -- the configuration fingerprint -----------------------------------------------------------


def config_fingerprint(config: Config) -> str:
    """SHA-256 of what of the configuration makes the images: each image's resolved settings,
    paths relative to the repository (two clones at different paths agree), secret build args
    by name only. The target, cluster, deploy and e2e settings are left out: a test job may
    run the bundle's images on another target or Kubernetes version (a profile)."""
    images = []
    for spec in config.images.values():
        images.append(
            {
                "name": spec.name,
                "context": config.relpath(spec.context),
                "dockerfile": config.relpath(spec.dockerfile),
                "build_args": {
                    key: "<secret>" if key in spec.secret_build_args else value
                    for key, value in sorted(spec.build_args.items())
                },
                "depends_on": list(spec.depends_on),
                "smoke": list(spec.smoke) if spec.smoke is not None else None,
                "smoke_entrypoint": spec.smoke_entrypoint,
                "options": spec.hashed_options(),
                "tags": list(spec.tags),
                "pull": spec.pull,
                "no_cache": spec.no_cache,
            }
        )
    text = json.dumps({"platform": config.platform, "images": images}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def resolve(path: str, root: Path) -> Path:
    """``--bundle-out`` / ``--bundle-in``: relative to the repository (where nox runs)."""
    return (root / path).resolve()


# -- writing ---------------------------------------------------------------------------------


def write_bundle(
    dest: Path,
    artifacts: Path,
    docker: DockerClient | DeferredDockerClient,
    *,
    config: Config | None,
    clock: Clock | None = None,
) -> BundleManifest:
    """Write the artifacts dir's current run as a bundle at ``dest``, replacing an earlier
    bundle there whole; raises ``BUNDLE_INVALID`` when ``dest`` is something else."""
    clock = clock or Clock()
    ledger = Ledger(artifacts, clock)
    run = ledger.read_run()
    if run is None:
        raise _invalid(dest, "there is no run to bundle: run.json is missing", "run a pipeline stage first")
    error = ledger.read_error()
    if error is not None and error.get("run_id") != run.get("run_id"):
        error = None
    if dest.exists() and not (dest / MANIFEST).is_file() and (not dest.is_dir() or any(dest.iterdir())):
        raise _invalid(
            dest,
            f"{dest} exists and is not a bundle: stagegate replaces only a bundle it wrote",
            "give --bundle-out a new or empty directory",
        )
    images = _built_images(run)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    except OSError as exc:
        raise _invalid(
            dest,
            f"the bundle {dest} cannot be written: {exc.strerror or exc} ({exc.filename or dest.parent})",
            "give --bundle-out a directory that can be made and written",
        ) from None
    try:
        files: dict[str, BundledFile] = {}
        if images:
            files[ARCHIVE] = _archive(tmp / ARCHIVE, images, dest, docker)
        names = ["run.json"] + (["error.json", "junit.xml"] if error is not None else [])
        for name in names:
            source = artifacts / name
            if source.is_file():
                shutil.copyfile(source, tmp / name)
                files[name] = _file_entry(tmp / name)
        manifest = BundleManifest(
            format=FORMAT,
            run_id=str(run.get("run_id")),
            written_at=iso(clock.now()),
            git=run.get("git") or {},
            config=config_fingerprint(config) if config is not None else None,
            stages={stage: str(stage_record(run, stage).get("status")) for stage in PIPELINE},
            images=images,
            files=files,
        )
        write_json_atomic(tmp / MANIFEST, manifest.model_dump())
        _replace_dir(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return manifest


def _built_images(run: Mapping[str, Any]) -> list[BundledImage]:
    build = stage_outputs(run, "build")
    return [
        BundledImage(name=name, ref=entry["ref"], image_id=entry["image_id"])
        for name, entry in (build.get("images") or {}).items()
        if entry.get("status") in LOCAL and entry.get("ref") and entry.get("image_id")
    ]


def _archive(
    path: Path, images: list[BundledImage], dest: Path, docker: DockerClient | DeferredDockerClient
) -> BundledFile:
    """The images in one ``docker save`` archive at ``path``; the archive of the bundle at
    ``dest`` is linked instead when it holds exactly these images."""
    try:
        earlier = BundleManifest.model_validate_json((dest / MANIFEST).read_text())
        entry = earlier.files.get(ARCHIVE)
        if earlier.images == images and entry and (dest / ARCHIVE).stat().st_size == entry.bytes:
            try:
                os.link(dest / ARCHIVE, path)
            except OSError:
                shutil.copyfile(dest / ARCHIVE, path)
            return entry
    except (OSError, ValueError):
        pass
    from python_on_whales.exceptions import DockerException

    try:
        docker.image.save([image.ref for image in images], output=path)
    except DockerException as exc:
        stderr = str(exc.stderr or "")
        raise StagegateError(
            Code.DOCKER_UNAVAILABLE if "Cannot connect" in stderr else Code.IMAGE_MISSING,
            f"docker save of the run's images failed: {stderr.strip().splitlines()[-1:] or exc}",
            "the bundle needs this run's images in the engine: run the build again",
            {"images": [image.ref for image in images]},
            command=CommandEvidence([str(a) for a in exc.docker_command], exc.return_code),
            log_excerpt=stderr[-2000:],
        ) from None
    return _file_entry(path)


def _file_entry(path: Path) -> BundledFile:
    return BundledFile(bytes=path.stat().st_size, sha256=_sha256(path))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _replace_dir(new: Path, dest: Path) -> None:
    """``new`` renamed to ``dest``; an earlier ``dest`` is moved aside first, then removed."""
    old = None
    if dest.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{dest.name}.old.", dir=dest.parent))
        os.replace(dest, old / "bundle")
    os.replace(new, dest)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


# -- reading ---------------------------------------------------------------------------------


def open_bundle(path: Path) -> Bundle:
    """The bundle at ``path`` with its run and error records (``BUNDLE_INVALID`` when it is
    missing, of another format, or a record differs from what bundle.json says of it). The
    archive is checked when it is loaded (:func:`load_images`), not here: a failed run's
    bundle is refused without reading it."""
    if not (path / MANIFEST).is_file():
        raise _invalid(
            path,
            f"no bundle at {path}: {MANIFEST} is missing",
            "give --bundle-in the directory that --bundle-out wrote (the whole of it)",
        )
    try:
        manifest = BundleManifest.model_validate_json((path / MANIFEST).read_text())
    except (OSError, ValueError, pydantic.ValidationError) as exc:
        raise _invalid(path, f"{MANIFEST} cannot be read: {str(exc).splitlines()[0]}", _REWRITE) from None
    if manifest.format != FORMAT:
        raise _invalid(path, f"bundle format {manifest.format}, this stagegate reads {FORMAT}", _REWRITE)
    records: dict[str, Any] = {}
    for name in ("run.json", "error.json"):
        entry = manifest.files.get(name)
        if entry is None:
            continue
        _check_file(path, name, entry)
        try:
            records[name] = json.loads((path / name).read_text())
        except ValueError as exc:
            raise _invalid(path, f"{name} is not JSON: {exc}", _REWRITE) from None
    if "run.json" not in records:
        raise _invalid(path, "the bundle holds no run.json", _REWRITE)
    for name in manifest.files:
        if not (path / name).is_file():
            raise _invalid(path, f"{name} is missing from the bundle", _REWRITE)
    return Bundle(path, manifest, records["run.json"], records.get("error.json"))


def _check_file(path: Path, name: str, entry: BundledFile) -> None:
    try:
        size = (path / name).stat().st_size
    except OSError:
        raise _invalid(path, f"{name} is missing from the bundle", _REWRITE) from None
    if size != entry.bytes or _sha256(path / name) != entry.sha256:
        raise _invalid(
            path,
            f"{name} is not the file the bundle was written with (size or SHA-256 differ)",
            "the bundle was changed or cut short on its way (an incomplete upload or download?); " + _REWRITE,
        )


def check_matches(bundle: Bundle, git: Mapping[str, Any], config: Config) -> None:
    """``BUNDLE_MISMATCH`` unless the bundle was written at this checkout's commit, from a
    clean work tree, with this image configuration."""
    theirs = bundle.manifest.git or {}
    if not theirs.get("sha") or not git.get("sha"):
        raise _mismatch(
            bundle,
            "the commit cannot be compared: "
            + ("the bundle's run" if not theirs.get("sha") else "this checkout")
            + " is not in a git repository",
            "write and use bundles in git checkouts of the same commit",
            {"key": "git"},
        )
    if theirs["sha"] != git["sha"]:
        raise _mismatch(
            bundle,
            f"the bundle is of commit {theirs['sha'][:12]}, this checkout is at {git['sha'][:12]}",
            "give this job the bundle its own commit's build job wrote (CI: the same workflow run)",
            {"key": "git", "expected": git["sha"], "found": theirs["sha"]},
        )
    if theirs.get("dirty"):
        raise _mismatch(
            bundle,
            f"the bundle was written from a work tree with uncommitted changes at {theirs['sha'][:12]}: "
            "its images may hold what this checkout lacks",
            "commit the changes, then write the bundle again",
            {"key": "git", "dirty": True},
        )
    mine = config_fingerprint(config)
    if bundle.manifest.config is not None and bundle.manifest.config != mine:
        raise _mismatch(
            bundle,
            "the bundle was built with another image configuration than this checkout's "
            "([tool.stagegate] images, their build args or the profile's)",
            "run both jobs with the same configuration, profile and build-arg environment "
            "(BASE_IMAGE=… and the like)",
            {"key": "tool.stagegate.images", "expected": mine, "found": bundle.manifest.config},
        )


def upstream_failure(bundle: Bundle) -> UpstreamInBundle | None:
    """``UPSTREAM_FAILED`` carrying the bundle's own error when its run did not pass one of
    :data:`TAKEN`; ``BUNDLE_INVALID`` raised when its run never got that far."""
    stages = bundle.run.get("stages") or {}
    taken: dict[str, dict[str, Any]] = {}
    for stage in TAKEN:
        record = stages.get(stage) or {}
        status = record.get("status")
        taken[stage] = _taken_record(bundle, record)
        if status in OK:
            continue
        if status not in ("failed", "interrupted"):
            raise _invalid(
                bundle.dir,
                f"the bundle's run did not get to the end of {stage} ({status})",
                f"write the bundle after {TAKEN[-1]}: `nox -s {TAKEN[-1]} -- --bundle-out DIR`",
            )
        cause = bundle.error if (bundle.error or {}).get("stage") == stage else None
        return UpstreamInBundle(_upstream_error(bundle, stage, str(status), cause), taken, cause)
    return None


def _upstream_error(
    bundle: Bundle, stage: str, status: str, cause: Mapping[str, Any] | None
) -> StagegateError:
    origin = f"the bundle's {stage} (run {bundle.manifest.run_id})"
    if cause is None:
        return StagegateError(
            Code.UPSTREAM_FAILED,
            f"{FIRST_OWN} refuses to run: {origin} {status}",
            "fix it and let the build job write the bundle again",
            {"stage": stage, "status": status, "bundle": str(bundle.dir)},
        )
    command = cause.get("command") or None
    return StagegateError(
        Code.UPSTREAM_FAILED,
        f"{FIRST_OWN} refuses to run: {origin} failed with {cause.get('code')}: {cause.get('message')}",
        str(cause.get("hint") or "fix it and let the build job write the bundle again")
        + (
            f" (the bundle's run wrote {cause['log_file']}: look in that job's artifacts)"
            if cause.get("log_file")
            else ""
        ),
        # the cause's image, file and line first: every report of this job points at them
        {**(cause.get("subject") or {}), "stage": stage, "status": status, "bundle": str(bundle.dir)},
        command=CommandEvidence(list(command.get("argv") or []), command.get("exit_code"))
        if isinstance(command, Mapping)
        else None,
        log_excerpt=str(cause.get("log_excerpt") or ""),
    )


def _taken_record(bundle: Bundle, record: Mapping[str, Any]) -> dict[str, Any]:
    outputs = dict(record.get("outputs") or {})
    outputs["from_bundle"] = bundle.origin()
    taken = {key: record.get(key) for key in ("status", "started_at", "duration_s")}
    if record.get("error"):
        taken["error"] = record["error"]
    return {**taken, "outputs": outputs}


def load_images(bundle: Bundle, docker: DockerClient | DeferredDockerClient) -> dict[str, str]:
    """``docker load`` the bundle's archive and check that every image it records is in the
    engine with the recorded ID; ``{name: image_id}``."""
    from python_on_whales.exceptions import DockerException

    archive = bundle.archive
    if archive is None:
        return {}
    _check_file(bundle.dir, ARCHIVE, bundle.manifest.files[ARCHIVE])
    try:
        docker.image.load(archive, quiet=True)
    except DockerException as exc:
        stderr = str(exc.stderr or "")
        if "Cannot connect" in stderr:
            raise StagegateError(
                Code.DOCKER_UNAVAILABLE,
                "the Docker engine does not answer: the bundle's images cannot be loaded",
                "start the Docker engine, then run again",
                {},
                command=CommandEvidence([str(a) for a in exc.docker_command], exc.return_code),
                log_excerpt=stderr[-2000:],
            ) from None
        raise _invalid(
            bundle.dir, f"docker load refused {ARCHIVE}: {stderr.strip()[-300:]}", _REWRITE
        ) from None
    loaded: dict[str, str] = {}
    for image in bundle.manifest.images:
        try:
            found = docker.image.inspect(image.ref).id
        except DockerException:
            found = None
        if found != image.image_id:
            raise _invalid(
                bundle.dir,
                f"{image.name}: {image.ref} from the bundle's archive has ID {found or 'none'}, "
                f"the bundle records {image.image_id}",
                "the archive or bundle.json was changed after the bundle was written; " + _REWRITE,
                image=image.name,
                ref=image.ref,
                expected=image.image_id,
                found=found,
            )
        loaded[image.name] = found
    return loaded


# -- the stages taken from the bundle ----------------------------------------------------------


def take_stage(ctx: StageContext, stage: str) -> None:
    """Run ``stage`` (one of :data:`TAKEN`) from the bundle of ``--bundle-in``: its outputs
    are the bundle's, marked ``from_bundle``; the build stage loads and checks the images."""
    assert ctx.options.bundle_in is not None and stage in TAKEN
    bundle = open_bundle(resolve(ctx.options.bundle_in, ctx.config.root))
    check_matches(bundle, ctx.run.get("git") or {}, ctx.config)
    failure = upstream_failure(bundle)
    if failure is not None:
        raise failure
    record = (bundle.run.get("stages") or {})[stage]
    ctx.reporter.stage_started(stage, f"from the bundle of run {bundle.manifest.run_id}")
    outputs = _taken_record(bundle, record)["outputs"]
    if stage == "build":
        ids = {image.name: image.image_id for image in bundle.manifest.images}
        for name, entry in (outputs.get("images") or {}).items():
            if entry.get("status") in LOCAL and ids.get(name) != entry.get("image_id"):
                raise _invalid(
                    bundle.dir,
                    f"{name}: run.json and {MANIFEST} record different image IDs",
                    _REWRITE,
                    image=name,
                )
        started = ctx.clock.monotonic()
        loaded = load_images(bundle, ctx.docker)
        outputs["from_bundle"] |= {
            "archive": str(bundle.archive) if bundle.archive else None,
            "loaded": loaded,
            "load_s": round(ctx.clock.monotonic() - started, 3),
        }
        for name in loaded:
            ctx.reporter.info(f"✓ {name}: loaded from the bundle, ID as recorded")
    ctx.outputs.update(outputs)
    ctx.reporter.info(f"✓ {stage}: passed in run {bundle.manifest.run_id}, taken from the bundle")


def archive_of_run(run: Mapping[str, Any]) -> Path | None:
    """The bundle archive this run's images were loaded from, if it still exists."""
    build = stage_outputs(run, "build")
    archive = (build.get("from_bundle") or {}).get("archive")
    return Path(archive) if archive and Path(archive).is_file() else None


_REWRITE = "write the bundle again (--bundle-out) and hand it over whole"


def _invalid(path: Path, message: str, hint: str, **subject: Any) -> StagegateError:
    return StagegateError(Code.BUNDLE_INVALID, message, hint, {"bundle": str(path), **subject})


def _mismatch(bundle: Bundle, message: str, hint: str, subject: dict[str, Any]) -> StagegateError:
    return StagegateError(Code.BUNDLE_MISMATCH, message, hint, {"bundle": str(bundle.dir), **subject})


__all__ = [
    "ARCHIVE",
    "MANIFEST",
    "TAKEN",
    "Bundle",
    "BundleManifest",
    "UpstreamInBundle",
    "archive_of_run",
    "check_matches",
    "config_fingerprint",
    "load_images",
    "open_bundle",
    "take_stage",
    "upstream_failure",
    "write_bundle",
]
