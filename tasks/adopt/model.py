"""What the adoption readers found: proposed images, port forwards, and findings that say where
each value came from or what could not be mapped onto stagegate's configuration."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ..config import PORT_FORWARD_TYPES, PortForward

__all__ = ["PORT_FORWARD_TYPES", "PortForward"]

READ = "read"
NOT_MAPPED = "not mapped"
NOT_PAIRED = "not paired"


@dataclass(frozen=True)
class Finding:
    """One line of what init read: the file, what happened to the value, and the value."""

    source: str  # the file, relative to the repository
    did: str  # READ | NOT_MAPPED | NOT_PAIRED | "paired" | "external" | "not configured"
    detail: str


@dataclass(frozen=True)
class ProposedImage:
    name: str
    context: str  # relative to the repository, "." for the root
    dockerfile: str | None  # None: <context>/Dockerfile
    why_root: str | None = None  # the COPY/ADD that made the context a folder above the Dockerfile's
    build_args: dict[str, str] = field(default_factory=dict)
    target: str | None = None
    depends_on: tuple[str, ...] = ()
    named_by: str = "folder"  # folder | skaffold | compose image | compose service | manifests

    @property
    def dockerfile_path(self) -> str:
        """The Dockerfile relative to the repository."""
        if self.dockerfile:
            return self.dockerfile
        return "Dockerfile" if self.context == "." else f"{self.context}/Dockerfile"

    def entry(self) -> dict[str, Any]:
        """The ``[[tool.stagegate.images]]`` table."""
        entry: dict[str, Any] = {"name": self.name, "context": self.context}
        if self.dockerfile:
            entry["dockerfile"] = self.dockerfile
        if self.build_args:
            entry["build_args"] = dict(self.build_args)
        if self.target:
            entry["target"] = self.target
        if self.depends_on:
            entry["depends_on"] = list(self.depends_on)
        return entry


def templated(value: Any) -> bool:
    """A value holding a Go template (``{{.IMAGE_REPO}}``), which init cannot evaluate."""
    return isinstance(value, str) and "{{" in value


def image_name(text: str) -> str:
    """A folder's path or a service's name as a Docker repository name: lowercase, runs of other
    characters as ``-``."""
    parts = [re.sub(r"[^a-z0-9]+", "-", part.lower()).strip("-") for part in text.split("/")]
    return "/".join(part for part in parts if part) or "app"
