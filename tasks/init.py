"""``stagegate init``: a starting configuration for a repository that has none.

:func:`discover` reads the repository and proposes ``[tool.stagegate]``:

- the images: what the root's ``skaffold.yaml`` builds (:mod:`stagegate.adopt.skaffold`), else
  what its compose file builds (:mod:`stagegate.adopt.compose`), else an image per file named
  ``Dockerfile`` (hidden folders, ``node_modules`` and virtualenvs are not searched), named after
  its folder (the repository's folder for one at the root; the folder's path when two folders
  share a name) and then after the manifest image it builds, when one fits
  (:func:`stagegate.adopt.kubernetes.pair_images`). Its context is its folder — or, when a
  ``COPY``/``ADD`` of it names a path that is not in its folder, the nearest folder above where
  every such path is (``COPY services/api/ /app/`` in ``services/api/Dockerfile``: the root);
- the manifests: what ``skaffold.yaml`` names, else the topmost kustomize dir, else every folder
  whose YAML holds Kubernetes objects (:func:`stagegate.adopt.kubernetes.find_manifests`); the
  images they name that nothing here builds as ``deploy.external_images``;
- the e2e command: ``pytest DIR -q`` for the shallowest folder named like ``e2e`` that holds
  pytest files (``test_*.py``, ``*_test.py``), without pytest's cache (it would be a build input);
  Skaffold's ``portForward`` as ``e2e.port_forward`` when there is one; Skaffold profiles that
  change the manifests or port forwards as ``[tool.stagegate.profiles.NAME]``.

Each value comes with a finding saying where it came from; what has no stagegate equivalent is
listed as not mapped.

:func:`init_repository` writes it: appended to ``pyproject.toml`` (created when there is none;
an existing file's bytes are kept as they are, and the result is checked to parse as the old
document plus the new table), a three-line ``noxfile.py`` when there is none (else the lines to
add are shown, never written), and the artifacts dir and ``.nox`` in the ``.dockerignore`` of
the repository root when an image's context is the root. Each action says what it did; a
second run changes nothing.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import tomlkit

from .adopt.compose import read_compose
from .adopt.kubernetes import find_manifests, manifest_images, pair_images
from .adopt.model import NOT_MAPPED, READ, Finding, PortForward, ProposedImage, image_name
from .adopt.skaffold import SkaffoldRead, read_skaffold
from .config import DEFAULT_ARTIFACTS, PYPROJECT, SECTION, STAGEGATE_TOML
from .dockerfile import Dockerfile, DockerfileSyntaxError, copy_sources
from .errors import config_error
from .references import repository

NOXFILE = "noxfile.py"
DOCKERIGNORE = ".dockerignore"
NOXFILE_LINES = "import stagegate.nox\n\nstagegate.nox.register()\n"
E2E_REQUIREMENTS = ["pytest>=8"]

# Folders never searched: VCS and tool state, dependencies, virtualenvs.
_SKIPPED = frozenset({"node_modules", "venv", "env", "__pycache__", "site-packages"})
_E2E_DIR = re.compile(r"(^|[-_])(e2e|end2end|end[-_]to[-_]end)([-_]|$)", re.IGNORECASE)


@dataclass(frozen=True)
class Proposal:
    images: tuple[ProposedImage, ...]
    manifests: tuple[str, ...]  # deploy.manifests, in order
    e2e: tuple[str, ...] | None
    external_images: tuple[str, ...] = ()
    port_forward: tuple[PortForward, ...] = ()  # only with an e2e command
    profiles: dict[str, dict[str, Any]] = field(default_factory=dict)
    findings: tuple[Finding, ...] = ()  # where each value came from, what was not mapped

    def table(self) -> dict[str, Any]:
        """``[tool.stagegate]`` as a plain dict (what tomllib reads back)."""
        table: dict[str, Any] = {"images": [image.entry() for image in self.images]}
        if self.manifests:
            deploy: dict[str, Any] = {
                "manifests": self.manifests[0] if len(self.manifests) == 1 else list(self.manifests)
            }
            if self.external_images:
                deploy["external_images"] = list(self.external_images)
            table["deploy"] = deploy
        if self.e2e:
            table["e2e"] = {"command": list(self.e2e), "requirements": list(E2E_REQUIREMENTS)}
            if self.port_forward:
                table["e2e"]["port_forward"] = [forward.entry() for forward in self.port_forward]
        if self.profiles:
            table["profiles"] = self.profiles
        return table

    def toml(self) -> str:
        """The table as TOML text (written by tomlkit), with a comment saying where it came from."""
        section = tomlkit.table()
        section.add(tomlkit.comment("Written by `stagegate init`: a start. See stagegate's README."))
        for key, value in self.table().items():
            if key == "images":
                images = tomlkit.aot()
                for entry in value:
                    image = tomlkit.table()
                    for name, item in entry.items():
                        if isinstance(item, dict):  # build_args = { BASE = "base" }
                            inline = tomlkit.inline_table()
                            inline.update(item)
                            image.add(name, inline)
                        else:
                            image.add(name, item)
                    images.append(image)
                section.add("images", images)
            else:
                section.add(key, _toml_table(value))
        tool = tomlkit.table(is_super_table=True)
        tool.add("stagegate", section)
        document = tomlkit.document()
        document.add("tool", tool)
        return tomlkit.dumps(document)


def _toml_table(value: dict[str, Any]) -> Any:
    """A nested dict as TOML tables, lists of tables as arrays of inline tables (one a line)."""
    table = tomlkit.table()
    for key, item in value.items():
        if isinstance(item, dict):
            table.add(key, _toml_table(item))
        elif isinstance(item, list) and item and all(isinstance(i, dict) for i in item):
            array = tomlkit.array()
            array.multiline(True)
            for entry in item:
                inline = tomlkit.inline_table()
                inline.update(entry)
                array.append(inline)
            table.add(key, array)
        else:
            table.add(key, item)
    return table


@dataclass(frozen=True)
class Action:
    """One thing init did, or found already done, or leaves to the user."""

    path: str
    did: str  # "created", "appended", "unchanged", "to add by hand"; or a finding's (READ, …)
    detail: str


# -- discovery ----------------------------------------------------------------------------------


def discover(root: Path) -> Proposal:
    """What the repository at ``root`` looks like to stagegate: its images (from skaffold.yaml, a
    compose file, or its Dockerfiles), manifests, e2e tests, and what init could not map."""
    root = root.resolve()
    dirs = sorted(_walk(root), key=lambda d: (len(d.relative_to(root).parts), d.as_posix()))
    findings: list[Finding] = []
    skaffold = read_skaffold(root)
    if skaffold is not None:
        findings.extend(skaffold.findings)
    images = _images_named(root, dirs, skaffold, findings)
    if skaffold is not None and skaffold.manifests:
        manifests = list(skaffold.manifests)
    else:
        manifests, found = find_manifests(root, dirs)
        findings.extend(found)
        findings.extend(Finding(m, "found", "Kubernetes objects: deploy.manifests") for m in manifests)
    references = manifest_images(root, manifests)
    images, paired = pair_images(images, references)
    findings.extend(paired)
    images = _with_dependencies(root, images, findings)

    names = {image.name for image in images}
    external = []
    for ref, file in references:
        if repository(ref) not in names:
            external.append(ref)
            findings.append(
                Finding(file, "external", f"{ref}: no image here builds it (deploy.external_images)")
            )
    e2e = _e2e(root, dirs)
    port_forward: tuple[PortForward, ...] = ()
    profiles: dict[str, dict[str, Any]] = {}
    if skaffold is not None:
        port_forward = _port_forward(skaffold.files[0], "portForward", skaffold.port_forward, e2e, findings)
        profiles = _skaffold_profiles(skaffold, e2e, findings)
    return Proposal(
        images=tuple(images),
        manifests=tuple(manifests),
        e2e=e2e,
        external_images=tuple(external) if manifests else (),
        port_forward=port_forward,
        profiles=profiles,
        findings=tuple(findings),
    )


def _images_named(
    root: Path, dirs: list[Path], skaffold: SkaffoldRead | None, findings: list[Finding]
) -> list[ProposedImage]:
    """The images to build: skaffold.yaml's, else a compose file's, else one per Dockerfile;
    a Dockerfile that the file naming the images builds nothing from is said."""
    compose = read_compose(root)
    if compose is not None and skaffold is not None and skaffold.images:
        findings.append(Finding(compose.file, "not read", f"{skaffold.files[0]} names the images"))
        compose = None
    elif compose is not None:
        findings.extend(compose.findings)
    dockerfiles = _images(root, dirs)
    if skaffold is not None and skaffold.images:
        images, named_by = list(skaffold.images), skaffold.files[0]
    elif compose is not None and compose.images:
        images, named_by = list(compose.images), compose.file
    else:
        images, named_by = list(dockerfiles), None
    if named_by is not None:
        covered = {os.path.normpath(image.dockerfile_path) for image in images}
        findings.extend(
            Finding(
                d.dockerfile_path,
                "not configured",
                f"{named_by} builds no image from it; add one by hand if it should be built",
            )
            for d in dockerfiles
            if os.path.normpath(d.dockerfile_path) not in covered
        )
    else:
        findings.extend(
            Finding(
                i.dockerfile_path,
                READ,
                f"image {i.name}: context {i.context}"
                + (f", because of COPY {i.why_root}" if i.why_root else ""),
            )
            for i in images
        )

    return images


def _skaffold_profiles(
    skaffold: SkaffoldRead, e2e: tuple[str, ...] | None, findings: list[Finding]
) -> dict[str, dict[str, Any]]:
    """skaffold.yaml's profiles as stagegate's: their manifests and port-forwards."""
    profiles: dict[str, dict[str, Any]] = {}
    for name, profile in skaffold.profiles.items():
        settings: dict[str, Any] = {}
        if profile.manifests is not None:
            manifests_of_profile = list(profile.manifests)
            settings["deploy"] = {
                "manifests": manifests_of_profile[0]
                if len(manifests_of_profile) == 1
                else manifests_of_profile
            }
        forwards = _port_forward(
            skaffold.files[0], f"profile {name} portForward", profile.port_forward or (), e2e, findings
        )
        if forwards:
            settings["e2e"] = {"port_forward": [f.entry() for f in forwards]}
        if settings:
            profiles[name] = settings
    return profiles


def _port_forward(
    source: str,
    where: str,
    forwards: tuple[PortForward, ...],
    e2e: tuple[str, ...] | None,
    findings: list[Finding],
) -> tuple[PortForward, ...]:
    """The port forwards, said; without an e2e command each is a not-mapped finding."""
    for forward in forwards:
        if e2e:
            findings.append(Finding(source, READ, f"{where}: e2e.port_forward {forward.describe()}"))
        else:
            findings.append(
                Finding(
                    source,
                    NOT_MAPPED,
                    f"{where} {forward.describe()}: no e2e tests found (with e2e.command it becomes e2e.port_forward)",
                )
            )
    return forwards if e2e else ()


def _with_dependencies(
    root: Path, images: list[ProposedImage], findings: list[Finding]
) -> list[ProposedImage]:
    """Images whose build args name a configured image depend on it: stated in ``depends_on``
    only where no ``FROM`` (or ``COPY --from``) line uses that arg, since stagegate infers those."""
    names = [image.name for image in images]
    result = []
    for image in images:
        wanted = [d for d in image.depends_on if d in names]
        for missing in (d for d in image.depends_on if d not in names):
            findings.append(
                Finding(
                    image.dockerfile_path,
                    NOT_MAPPED,
                    f"image {image.name} requires {missing}, which no configured image is",
                )
            )
        named = [v for v in image.build_args.values() if v in names and v != image.name]
        if named:
            try:
                parsed = Dockerfile.parse(
                    (root / image.dockerfile_path).read_text(encoding="utf-8"), root / image.dockerfile_path
                )
                inferred = {ref.configured_name(names) for ref in parsed.image_refs(image.build_args)}
            except (OSError, UnicodeDecodeError, DockerfileSyntaxError):
                inferred = set()
            wanted += [v for v in named if v not in inferred]
        result.append(replace(image, depends_on=tuple(dict.fromkeys(wanted))))
    return result


def _walk(root: Path) -> Iterator[Path]:
    for current, subdirs, _files in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith(".") and d not in _SKIPPED)
        yield Path(current)


def _images(root: Path, dirs: list[Path]) -> tuple[ProposedImage, ...]:
    found = [d / "Dockerfile" for d in dirs if (d / "Dockerfile").is_file()]
    folder_names = [(d.parent if d.parent != root else root).name for d in found]
    images = []
    for path, folder in zip(found, folder_names, strict=True):
        folder_rel = path.parent.relative_to(root).as_posix()
        if folder_names.count(folder) > 1 and path.parent != root:
            folder = folder_rel
        name = image_name(folder)
        context, why = _context(root, path)
        if context == path.parent:
            images.append(ProposedImage(name, _relative(root, context), None))
        else:
            images.append(
                ProposedImage(name, _relative(root, context), path.relative_to(root).as_posix(), why)
            )
    return tuple(images)


def _context(root: Path, dockerfile: Path) -> tuple[Path, str | None]:
    """The build context of ``dockerfile`` and the ``COPY``/``ADD`` source that chose it: its own
    folder when every source is there, else the nearest folder above it (up to the repository
    root) where every source is; the root for a source that leaves the folder with ``..``. A
    Dockerfile whose sources are nowhere keeps its folder (the build then says what is missing)."""
    folder = dockerfile.parent
    try:
        parsed = Dockerfile.parse(dockerfile.read_text(encoding="utf-8"), dockerfile)
    except (OSError, UnicodeDecodeError, DockerfileSyntaxError):
        return folder, None
    sources = [
        source
        for instruction in parsed.instructions
        if instruction.keyword in ("COPY", "ADD") and "from" not in instruction.flags()
        for source in copy_sources(instruction) or ()  # None: not read for certain
        if not (source.startswith("<<") or "$" in source or "://" in source or source.startswith("git@"))
    ]
    relative = [source.lstrip("/") for source in sources]
    for source, path in zip(sources, relative, strict=True):
        if ".." in Path(path).parts:
            return root, source
    missing = [source for source, path in zip(sources, relative, strict=True) if not _matches(folder, path)]
    if not missing:
        return folder, None
    for ancestor in folder.parents:
        if all(_matches(ancestor, path) for path in relative):
            return ancestor, missing[0]
        if ancestor == root:
            break
    return folder, None


def _matches(base: Path, pattern: str) -> bool:
    if pattern in ("", "."):
        return True
    if any(c in pattern for c in "*?["):
        return any(base.glob(pattern.rstrip("/")))
    return (base / pattern).exists()


def _e2e(root: Path, dirs: list[Path]) -> tuple[str, ...] | None:
    for d in dirs:
        if d != root and _E2E_DIR.search(d.name) and _has_pytest_files(d):
            return ("pytest", _relative(root, d), "-q", "-p", "no:cacheprovider")
    return None


def _has_pytest_files(folder: Path) -> bool:
    return any(
        path.is_file() and (path.name.startswith("test_") or path.stem.endswith("_test"))
        for path in folder.rglob("*.py")
    )


def _relative(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix() or "."


# -- writing ------------------------------------------------------------------------------------


def init_repository(root: Path) -> list[Action]:
    """Write the starting configuration into the repository at ``root``; what was done, in order.

    Raises :class:`StagegateError` (``CONFIG_INVALID``) when there is nothing to configure (no
    Dockerfile) or the existing ``pyproject.toml`` cannot take the table; nothing is written then.
    """
    root = root.resolve()
    actions: list[Action] = []
    existing = _configured_table(root)
    if existing is None:
        proposal = discover(root)
        if not proposal.images:
            raise config_error(
                SECTION,
                f"stagegate init found no Dockerfile in {root.name}/ (hidden folders are not searched)",
                f"add [[{SECTION}.images]] to {PYPROJECT} by hand (see README), or run init where the Dockerfiles are",
            )
        actions.extend(Action(f.source, f.did, f.detail) for f in proposal.findings)
        actions.append(_write_table(root, proposal))
        contexts = [image.context for image in proposal.images]
        artifacts = DEFAULT_ARTIFACTS
    else:
        where, table = existing
        actions.append(Action(where, "unchanged", f"already configured: [{SECTION}] is in {where}"))
        images = table.get("images") if isinstance(table.get("images"), list) else []
        contexts = [str(i.get("context", ".")) for i in images if isinstance(i, dict)]
        artifacts = str(table.get("artifacts", DEFAULT_ARTIFACTS))
    actions.append(_write_noxfile(root))
    if any(os.path.normpath(context) == "." for context in contexts):
        actions.append(_write_dockerignore(root, [artifacts, ".nox"]))
    return actions


def _configured_table(root: Path) -> tuple[str, dict[str, Any]] | None:
    """The file already holding ``[tool.stagegate]`` and the table, or None."""
    for name in (PYPROJECT, STAGEGATE_TOML):
        path = root / name
        if not path.is_file():
            continue
        try:
            document = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            continue  # a broken pyproject.toml is refused by _write_table
        tool = document.get("tool")
        if isinstance(tool, dict) and isinstance(tool.get("stagegate"), dict):
            return name, tool["stagegate"]
    return None


def _write_table(root: Path, proposal: Proposal) -> Action:
    path = root / PYPROJECT
    summary = _summary(proposal)
    if not path.exists():
        path.write_text(proposal.toml(), encoding="utf-8")
        return Action(PYPROJECT, "created", f"with [{SECTION}]: {summary}")
    try:
        old_text = path.read_text(encoding="utf-8")
        old = tomllib.loads(old_text)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise config_error(
            SECTION,
            f"stagegate init cannot add [{SECTION}] to {PYPROJECT}: it is not readable TOML ({exc})",
            f"fix {PYPROJECT} (UTF-8 TOML), then run init again; nothing was written",
            file=PYPROJECT,
        ) from None
    separator = (
        "" if not old_text or old_text.endswith("\n\n") else ("\n" if old_text.endswith("\n") else "\n\n")
    )
    new_text = old_text + separator + proposal.toml()
    expected = {**old, "tool": {**(old.get("tool") or {}), "stagegate": proposal.table()}}
    try:
        appended_ok = tomllib.loads(new_text) == expected
    except tomllib.TOMLDecodeError:
        appended_ok = False
    if not appended_ok:  # e.g. an inline `tool = {…}` table, which no [tool.x] header may extend
        raise config_error(
            SECTION,
            f"stagegate init cannot append [{SECTION}] to {PYPROJECT}: the file would not read back as before plus the new table",
            f"add this to {PYPROJECT} by hand; nothing was written:\n{proposal.toml()}",
            file=PYPROJECT,
        )
    path.write_text(new_text, encoding="utf-8")
    return Action(PYPROJECT, "appended", f"[{SECTION}] at its end, the rest kept as it was: {summary}")


def _summary(proposal: Proposal) -> str:
    images = ", ".join(
        f"{i.name} ({i.context}" + (f", because of COPY {i.why_root}" if i.why_root else "") + ")"
        for i in proposal.images
    )
    parts = [f"images {images}"]
    parts.append(
        f"manifests {', '.join(proposal.manifests)}"
        if proposal.manifests
        else "no manifests found (add deploy.manifests)"
    )
    if proposal.external_images:
        parts.append(f"external images {', '.join(proposal.external_images)}")
    parts.append(
        f"e2e `{' '.join(proposal.e2e)}`" if proposal.e2e else "no e2e tests found (add e2e.command)"
    )
    if proposal.port_forward:
        parts.append(f"{len(proposal.port_forward)} port forward(s)")
    if proposal.profiles:
        parts.append(f"profiles {', '.join(proposal.profiles)}")
    return "; ".join(parts)


def _write_noxfile(root: Path) -> Action:
    path = root / NOXFILE
    if not path.exists():
        path.write_text(NOXFILE_LINES, encoding="utf-8")
        return Action(NOXFILE, "created", "stagegate's sessions in three lines")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        text = ""
    if "stagegate.nox.register(" in text:
        return Action(NOXFILE, "unchanged", "it already calls stagegate.nox.register()")
    return Action(
        NOXFILE, "to add by hand", f"it exists and is left as it is; add these lines:\n{NOXFILE_LINES}"
    )


def _write_dockerignore(root: Path, names: list[str]) -> Action:
    path = root / DOCKERIGNORE
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    present = {line.strip().strip("/") for line in text.splitlines() if not line.lstrip().startswith("#")}
    missing = [name.strip("/") for name in names if name.strip("/") not in present]
    if not missing:
        return Action(DOCKERIGNORE, "unchanged", f"it already leaves out {', '.join(names)}")
    lines = "# stagegate's artifacts and nox's virtualenvs are no build inputs\n" + "".join(
        f"{name}/\n" for name in missing
    )
    if not path.exists():
        path.write_text(lines, encoding="utf-8")
        return Action(DOCKERIGNORE, "created", f"leaving {', '.join(missing)} out of the root context")
    separator = "" if not text or text.endswith("\n") else "\n"
    path.write_text(text + separator + lines, encoding="utf-8")
    return Action(DOCKERIGNORE, "appended", f"{', '.join(missing)}, left out of the root context")


def describe(actions: list[Action]) -> list[str]:
    """The lines init prints: one per action, and "already configured" when nothing changed."""
    lines = [f"{action.path}: {action.did} — {action.detail}" for action in actions]
    if all(action.did in ("unchanged", "to add by hand") for action in actions):
        lines.append("stagegate is already configured here: nothing written")
    return lines
