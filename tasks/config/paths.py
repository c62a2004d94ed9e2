"""Paths the configuration names: inside the repository, and of the kind the key expects."""

from __future__ import annotations

import stat
from pathlib import Path

from ..errors import config_error
from ..filetypes import file_type
from .models import PYPROJECT


def path_in_repo(root: Path, value: str, key: str, *, must_exist: bool, kind: str = "path") -> Path:
    path = (root / value).resolve()
    if not inside(root, path):
        raise config_error(
            key,
            f"{key} = {value!r} leaves the repository",
            "use a path inside the repository, relative to pyproject.toml",
            path=value,
        )
    if must_exist:
        try:
            mode = path.stat().st_mode
        except OSError:
            raise config_error(
                key,
                f"{key}: {kind} {value!r} does not exist",
                f"create it or fix the path in {PYPROJECT}",
                path=value,
            ) from None
        wanted = {"directory": stat.S_ISDIR, "file": stat.S_ISREG}.get(kind)
        if wanted is not None and not wanted(mode):
            raise config_error(
                key,
                f"{key}: {value!r} is {file_type(mode)}, not a {'regular file' if kind == 'file' else kind}",
                f"point {key.rsplit('.', 1)[-1]} at a {'file' if kind == 'file' else kind} in {PYPROJECT}",
                path=value,
            )
    return path


def inside(root: Path, path: Path) -> bool:
    return path.resolve().is_relative_to(root.resolve())
