"""An image's record in run.json (``stages.build.outputs.images[name]``): the statuses the build
stage writes and the stages after it read, each named once, and the reader of the images a run
can use. A module of no imports: the bundle, the result cache and the terminal read it without
the builder."""

from __future__ import annotations

from typing import Any

from .ledger import stage_outputs

BUILT = "built"
UP_TO_DATE = "up to date"  # built before from the same inputs: its sg- tag is on this engine
PULLED = "pulled"  # from the registry cache: pulled and tagged as if built here
# Found in the registry cache and recorded by digest, nothing pulled: a target whose cluster
# pulls the images itself (the existing target).
IN_REGISTRY = "in the registry"
FAILED = "failed"
CANCELLED = "cancelled"  # its build was stopped when another failed
NOT_STARTED = "not started"
SKIPPED = "skipped"  # it needs an image that failed

#: The run has the image (on this engine, or in the registry): it can be verified, loaded, run.
USABLE = (BUILT, UP_TO_DATE, PULLED, IN_REGISTRY)
#: The run has it on this engine (what a bundle's archive can hold).
LOCAL = (BUILT, UP_TO_DATE, PULLED)
#: A build of it ended (the terminal prints its line).
FINAL = (*USABLE, FAILED, CANCELLED, SKIPPED, NOT_STARTED)


def usable_images(run: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The build record's images this run can use, with their reference, in record order."""
    images = stage_outputs(run, "build").get("images") or {}
    return {
        name: entry for name, entry in images.items() if entry.get("status") in USABLE and entry.get("ref")
    }
