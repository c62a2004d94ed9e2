"""``stagegate init``: a starting configuration for a repository that has none.

:func:`discover` reads the repository and proposes ``[tool.stagegate]``:

- an image per file named ``Dockerfile`` (hidden folders, ``node_modules`` and virtualenvs are
  not searched), named after its folder (the repository's folder for one at the root; the
  folder's path when two folders share a name). Its context is its folder — or, when a
  ``COPY``/``ADD`` of it names a path that is not in its folder, the nearest folder above where
  every such path is (``COPY services/api/ /app/`` in ``services/api/Dockerfile``: the root);
- the manifests: the shallowest folder with a ``kustomization.yaml``, else the shallowest folder
  whose YAML files hold Kubernetes objects (``apiVersion`` and ``kind``), most objects first;
- the e2e command: ``pytest DIR -q`` for the shallowest folder named like ``e2e`` that holds
  pytest files (``test_*.py``, ``*_test.py``), without pytest's cache (it would be a build input).

:func:`init_repository` writes it: appended to ``pyproject.toml`` (created when there is none;
an existing file's bytes are kept as they are, and the result is checked to parse as the old
document plus the new table), a three-line ``noxfile.py`` when there is none (else the lines to
add are shown, never written), and the artifacts dir and ``.nox`` in the ``.dockerignore`` of
the repository root when an image's context is the root. Each action says what it did; a
second run changes nothing.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomlkit
import yaml

from .config import DEFAULT_ARTIFACTS, PYPROJECT, SECTION, STAGEGATE_TOML
from .dockerfile import Dockerfile, DockerfileSyntaxError, Instruction
from .errors import config_error
from .manifests import KUSTOMIZATION_FILES

NOXFILE = "noxfile.py"
DOCKERIGNORE = ".dockerignore"
NOXFILE_LINES = "import stagegate.nox\n\nstagegate.nox.register()\n"
E2E_REQUIREMENTS = ["pytest>=8"]

# Folders never searched: VCS and tool state, dependencies, virtualenvs.
_SKIPPED = frozenset({"node_modules", "venv", "env", "__pycache__", "site-packages"})
_E2E_DIR = re.compile(r"(^|[-_])(e2e|end2end|end[-_]to[-_]end)([-_]|$)", re.IGNORECASE)


@dataclass(frozen=True)
class ProposedImage:
    name: str
    context: str  # relative to the repository, "." for the root
    dockerfile: str | None  # None: <context>/Dockerfile
    why_root: str | None = None  # the COPY/ADD that made the context a folder above the Dockerfile's


@dataclass(frozen=True)
class Proposal:
    images: tuple[ProposedImage, ...]
    manifests: str | None
    e2e: tuple[str, ...] | None

    def table(self) -> dict[str, Any]:
        """``[tool.stagegate]`` as a plain dict (what tomllib reads back)."""
        table: dict[str, Any] = {"images": []}
        for image in self.images:
            entry = {"name": image.name, "context": image.context}
            if image.dockerfile:
                entry["dockerfile"] = image.dockerfile
            table["images"].append(entry)
        if self.manifests:
            table["deploy"] = {"manifests": self.manifests}
        if self.e2e:
            table["e2e"] = {"command": list(self.e2e), "requirements": list(E2E_REQUIREMENTS)}
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
                    image.update(entry)
                    images.append(image)
                section.add("images", images)
            else:
                section.add(key, value)
        tool = tomlkit.table(is_super_table=True)
        tool.add("stagegate", section)
        document = tomlkit.document()
        document.add("tool", tool)
        return tomlkit.dumps(document)


@dataclass(frozen=True)
class Action:
    """One thing init did, or found already done, or leaves to the user."""

    path: str
    did: str  # "created", "appended", "unchanged", "to add by hand"
    detail: str


# -- discovery ----------------------------------------------------------------------------------


def discover(root: Path) -> Proposal:
    """What the repository at ``root`` looks like to stagegate: its images, manifests, e2e tests."""
    root = root.resolve()
    dirs = sorted(_walk(root), key=lambda d: (len(d.relative_to(root).parts), d.as_posix()))
    return Proposal(_images(root, dirs), _manifests(root, dirs), _e2e(root, dirs))


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
        name = _image_name(folder)
        context, why = _context(root, path)
        if context == path.parent:
            images.append(ProposedImage(name, _relative(root, context), None))
        else:
            images.append(
                ProposedImage(name, _relative(root, context), path.relative_to(root).as_posix(), why)
            )
    return tuple(images)


def _image_name(folder: str) -> str:
    """A folder's path as a Docker repository name: lowercase, runs of other characters as ``-``."""
    parts = [re.sub(r"[^a-z0-9]+", "-", part.lower()).strip("-") for part in folder.split("/")]
    return "/".join(part for part in parts if part) or "app"


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
        for source in _sources(instruction)
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


def _sources(instruction: Instruction) -> list[str]:
    """The source paths of a ``COPY``/``ADD`` (shell or JSON form), without its flags."""
    text = instruction.arguments.strip()
    words = text.split()
    while words and words[0].startswith("--"):
        words.pop(0)
    rest = " ".join(words)
    if rest.startswith("["):
        try:
            paths = json.loads(rest)
        except json.JSONDecodeError:
            paths = []
        return [str(p) for p in paths[:-1]]
    return words[:-1]


def _matches(base: Path, pattern: str) -> bool:
    if pattern in ("", "."):
        return True
    if any(c in pattern for c in "*?["):
        return any(base.glob(pattern.rstrip("/")))
    return (base / pattern).exists()


def _manifests(root: Path, dirs: list[Path]) -> str | None:
    for d in dirs:
        if any((d / name).is_file() for name in KUSTOMIZATION_FILES):
            return _relative(root, d)
    best: tuple[int, Path] | None = None
    for d in dirs:
        # the shallowest depth with objects wins; deeper folders only when none is shallower
        if best is not None and len(d.relative_to(root).parts) > len(best[1].relative_to(root).parts):
            break
        count = sum(_kubernetes_objects(path) for path in sorted(d.iterdir()) if _is_yaml(path))
        if count and (best is None or count > best[0]):
            best = (count, d)
    return _relative(root, best[1]) if best else None


def _is_yaml(path: Path) -> bool:
    return path.suffix in (".yaml", ".yml") and path.is_file()


def _kubernetes_objects(path: Path) -> int:
    """How many documents of the YAML file are Kubernetes objects (0 when it does not parse)."""
    try:
        documents = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return 0
    return sum(isinstance(d, dict) and "apiVersion" in d and "kind" in d for d in documents)


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
        f"manifests {proposal.manifests}"
        if proposal.manifests
        else "no manifests found (add deploy.manifests)"
    )
    parts.append(
        f"e2e `{' '.join(proposal.e2e)}`" if proposal.e2e else "no e2e tests found (add e2e.command)"
    )
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
