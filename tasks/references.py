"""Image references: ``[registry[:port]/]path[:tag][@digest]``, normalised like Docker does."""

from __future__ import annotations


def repository(ref: str) -> str:
    """The repository of an image reference, in Docker's familiar form.

    ``docker.io/library/busybox:1.36`` -> ``busybox``; ``docker.io/library/a/b`` ->
    ``library/a/b``; ``localhost:5000/a/b@sha256:…`` -> ``localhost:5000/a/b``;
    ``example/api:dev`` -> ``example/api``.
    """
    name = ref.split("@", 1)[0]
    last_slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > last_slash:
        name = name[:colon]
    for prefix in ("docker.io/", "index.docker.io/"):
        if name.startswith(prefix):
            name = name[len(prefix) :]
            break
    if name.startswith("library/") and name.count("/") == 1:  # only official images drop it
        name = name[len("library/") :]
    return name


def tag_of(ref: str) -> str | None:
    """The tag of a reference, also when a digest follows it; None when it has none."""
    name = ref.split("@", 1)[0]
    last_slash = name.rfind("/")
    colon = name.rfind(":")
    return name[colon + 1 :] if colon > last_slash else None
