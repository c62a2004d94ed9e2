"""An image's inputs: what a build of it reads (the context's files, its Dockerfile, build args,
its bases and the configured images it needs), hashed into its ``sg-`` tag; saved per image so
that verify can name the file that changed; and what the ledger keeps of a built image for its
dependents. Shared by build and verify."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from . import engine, hashing, runner
from .buildcontext import never_inputs
from .config import Config, ImageSpec
from .dockerclient import docker_argv
from .dockerfile import Dockerfile, DockerfileSyntaxError
from .ledger import write_json_atomic
from .references import repository

if TYPE_CHECKING:
    from python_on_whales import DockerClient

    from .dockerclient import DeferredDockerClient


@dataclass(frozen=True)
class BuiltImage:
    """What the ledger records of a built image: enough to build or check its dependents."""

    ref: str
    image_id: str
    input_hash: str = ""
    pinned: str = ""  # only in the registry (IN_REGISTRY): where, by digest
    platform: str | None = None  # and its platform, as the registry says

    @property
    def identity(self) -> str:
        """What a dependent's inputs hold of this image: its input hash, which two machines
        share for the same sources (its image ID differs between two builds of them); the
        image ID only for a record that has no input hash."""
        return f"inputs:{self.input_hash}" if self.input_hash else self.image_id


def never_input_paths(config: Config) -> tuple[Path, ...]:
    """stagegate's artifacts dir and nox's environments: written during every run, so never
    inputs of an image, even in a repository-root context whose ``.dockerignore`` does not
    exclude them (preflight warns that Docker still sends them then)."""
    return (config.artifacts, config.root / ".nox")


def context_hasher(config: Config) -> hashing.ContextHasher:
    """The hasher of one stage: contexts walked once, digests remembered in the artifacts dir."""
    return hashing.ContextHasher(config.artifacts / hashing.CACHE_FILE)


def image_inputs(
    spec: ImageSpec,
    dependencies: Mapping[str, BuiltImage],
    local_id: Callable[[str], str],
    *,
    hasher: hashing.ContextHasher,
    never: tuple[Path, ...] = (),
    onbuild: Callable[[str], Sequence[str]] | None = None,
) -> tuple[dict[str, str], hashing.Inputs]:
    """The build args and the inputs of ``spec``, given its built dependencies.

    Build args whose value names a configured dependency get its exact built reference
    (``ARG BASE=example/base`` + ``FROM ${BASE}`` builds on the very image of this run). What it
    builds on is an input too: a configured dependency by its own input hash (the same on every
    machine, however and wherever it was built or pulled), an external base by its image ID
    (``local_id`` looks it up).
    ``never`` (see :func:`never_input_paths`) is left out of the context's files. Of the context,
    only the files its ``COPY``/``ADD`` sources take are inputs (all of it where the
    Dockerfile cannot be read for certain: ``COPY . …``, sources from variables, bind mounts
    of the context), and those its bases' ``ONBUILD`` triggers take (``onbuild``: the
    triggers of a base by reference, :func:`onbuild_triggers`; they run in this build).
    Secret build args are inputs by their fingerprint only (the inputs file never holds their
    value).
    """
    build_args = dict(spec.build_args)
    for name, value in spec.parsed.global_args(spec.build_args).items():
        dependency = dependencies.get(repository(value)) if value else None
        if dependency is not None and dependency.ref:
            build_args[name] = dependency.ref
    bases: dict[str, str] = {}
    for ref in spec.parsed.image_refs(build_args):
        if not ref.internal:
            dependency = dependencies.get(repository(ref.ref))
            bases[ref.ref] = dependency.identity if dependency else local_id(ref.ref)
    for name, dependency in dependencies.items():  # depends_on without a FROM line
        bases.setdefault(f"depends_on:{name}", dependency.identity)
    sources = spec.parsed.context_sources(build_args, spec.target).patterns
    for ref in spec.parsed.base_refs(build_args):
        triggers = () if ref.internal or onbuild is None else onbuild(ref.ref)
        if triggers and sources is not None:
            sources = _with_triggers(sources, triggers)
    return build_args, hashing.collect_inputs(
        spec.context,
        spec.dockerfile,
        build_args,
        bases,
        excluded=never_inputs(spec.context, never),
        hasher=hasher,
        secret_args=spec.secret_build_args,
        options=spec.hashed_options(),
        sources=sources,
    )


def _with_triggers(sources: tuple[str, ...], triggers: Sequence[str]) -> tuple[str, ...] | None:
    """``sources`` and what a base's ``ONBUILD`` triggers take of the context (None: all)."""
    try:
        taken = Dockerfile.parse("FROM scratch\n" + "\n".join(triggers)).context_sources().patterns
    except DockerfileSyntaxError:
        return None
    return None if taken is None else (*sources, *taken)


def onbuild_triggers(config: Config, ref: str, inspected: Mapping[str, Sequence[str]]) -> tuple[str, ...]:
    """The ``ONBUILD`` triggers of base ``ref``: a configured image's from its Dockerfile, an
    external one's as :func:`local_image` read them (``inspected``, by reference)."""
    spec = config.images.get(repository(ref))
    if spec is not None:
        return tuple(i.arguments for i in spec.parsed.instructions if i.keyword == "ONBUILD")
    return tuple(inspected.get(ref, ()))


def local_image(
    docker: DockerClient | DeferredDockerClient, ref: str, *, sleep: Callable[[float], None] = time.sleep
) -> tuple[str, tuple[str, ...]]:
    """The ID of a local image (or ``"absent"``) and its ``ONBUILD`` triggers, in one inspect."""
    try:
        image = engine.inspect_images(docker_argv(docker), [ref], sleep=sleep).get(ref)
    except runner.CommandFailed:  # the engine did not answer: the build will say so
        image = None
    if image is None:
        return "absent", ()
    return image.id, image.on_build


def inputs_path(inputs_dir: Path, name: str) -> Path:
    return inputs_dir / f"{safe_name(name)}.json"


def save_inputs(inputs_dir: Path, name: str, inputs: hashing.Inputs) -> None:
    write_json_atomic(inputs_path(inputs_dir, name), inputs.to_json())


def load_inputs(inputs_dir: Path, name: str) -> hashing.Inputs | None:
    try:
        return hashing.Inputs.from_json(json.loads(inputs_path(inputs_dir, name).read_text()))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def safe_name(name: str) -> str:
    """An image name as a file name: ``example/api-server`` -> ``example-api-server``."""
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in name)
