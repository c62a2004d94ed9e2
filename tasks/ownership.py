"""Who owns what stagegate creates: one owner id per artifacts dir, and the one label that
carries it.

Everything stagegate creates on an engine or a cluster carries ``OWNER_LABEL=<owner id>``;
teardown, redeploy and reuse act only on objects with that id, never on a name alone. The
id is random, made once and kept in ``<artifacts>/owner.json``: two checkouts (even two CI
jobs that mount their checkout at the same path and share one engine) never get the same
id, so they never touch each other's resources. Deleting the artifacts dir forgets the id:
what the old id created is then left alone (it is foreign to the new id), never adopted.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from pathlib import Path

from .errors import Code, StagegateError, artifacts_unwritable

OWNER_LABEL = "dev.stagegate.owner"
OWNER_FILE = "owner.json"
_SHORT = 8


def owner_id(artifacts: Path) -> str:
    """The owner id of ``artifacts``: read from its ``owner.json``, made there on first use
    (atomically: two processes that race to make it end with the same id)."""
    path = artifacts / OWNER_FILE
    found = _read(path)
    if found is not None:
        return found
    made = secrets.token_hex(16)
    draft = artifacts / f".{OWNER_FILE}.{os.getpid()}.{made[:6]}"
    try:
        artifacts.mkdir(parents=True, exist_ok=True)
        draft.write_text(json.dumps({"owner": made}))
        os.link(draft, path)  # atomic, and refused when another process made it first
    except FileExistsError:
        pass
    except OSError as exc:
        raise artifacts_unwritable(artifacts, exc.strerror or exc, artifacts) from None
    else:
        return made
    finally:
        with contextlib.suppress(OSError):
            draft.unlink(missing_ok=True)
    found = _read(path)
    if found is None:
        raise StagegateError(
            Code.CONFIG_INVALID,
            f"{path} does not hold a stagegate owner id",
            f"delete {path} (stagegate then no longer recognises what the old id created: "
            "remove that by hand, or let it be)",
            {"file": str(path)},
        )
    return found


def short(owner: str) -> str:
    """The part of the owner id that goes into names (networks, containers, volumes)."""
    return owner[:_SHORT]


def _read(path: Path) -> str | None:
    try:
        value = json.loads(path.read_text()).get("owner")
    except FileNotFoundError:
        return None
    except (OSError, ValueError, AttributeError):
        return None
    if isinstance(value, str) and len(value) >= _SHORT and value.isalnum():
        return value
    return None
