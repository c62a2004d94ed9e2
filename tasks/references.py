"""Image references: ``[registry[:port]/]path[:tag][@digest]``, normalised like Docker does."""

from __future__ import annotations


def repository(ref: str) -> str:
    """The repository of an image reference, normalised like Docker normalises it.

    ``docker.io/library/busybox:1.36`` -> ``busybox``; ``localhost:5000/a/b@sha256:…`` ->
    ``localhost:5000/a/b``; ``example/api:dev`` -> ``example/api``.
    """
    name = ref.split("@", 1)[0]
    last_slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > last_slash:
        name = name[:colon]
    for prefix in ("docker.io/library/", "index.docker.io/library/", "docker.io/", "index.docker.io/"):
        if name.startswith(prefix):
            name = name[len(prefix) :]
            break
    if name.startswith("library/") and name.count("/") == 1:
        name = name[len("library/") :]
    return name


def tag_of(ref: str) -> str | None:
    """The tag of a reference (None when it has none, or only a digest)."""
    if "@" in ref:
        return None
    last_slash = ref.rfind("/")
    colon = ref.rfind(":")
    return ref[colon + 1 :] if colon > last_slash else None
