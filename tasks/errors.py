"""The one error type of stagegate and its catalogue of stable codes.

Every expected failure is a :class:`StagegateError` carrying a code from :class:`Code`, a
one-line message, a hint and a subject (the keys that apply: image, file, line, ...). The
stage runner (:mod:`stagegate.pipeline`) turns it into ``error.json``; anything else that
escapes a stage is recorded as ``INTERNAL_ERROR`` with its traceback.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class Code(enum.StrEnum):
    """Error codes of error.json. Extend as needed, never rename."""

    CONFIG_INVALID = "CONFIG_INVALID"
    DOCKER_UNAVAILABLE = "DOCKER_UNAVAILABLE"
    TOOL_MISSING = "TOOL_MISSING"
    BASE_IMAGE_MISSING = "BASE_IMAGE_MISSING"
    BUILD_FAILED = "BUILD_FAILED"
    BUILDKIT_REQUIRED = "BUILDKIT_REQUIRED"
    IMAGE_MISSING = "IMAGE_MISSING"
    IMAGE_STALE = "IMAGE_STALE"
    PLATFORM_MISMATCH = "PLATFORM_MISMATCH"
    SMOKE_FAILED = "SMOKE_FAILED"
    MANIFEST_IMAGE_UNKNOWN = "MANIFEST_IMAGE_UNKNOWN"
    PULL_POLICY_INVALID = "PULL_POLICY_INVALID"
    CLUSTER_CREATE_FAILED = "CLUSTER_CREATE_FAILED"
    IMAGE_LOAD_FAILED = "IMAGE_LOAD_FAILED"
    APPLY_FAILED = "APPLY_FAILED"
    CLUSTER_UNREACHABLE = "CLUSTER_UNREACHABLE"
    IMAGE_PULL_ERROR = "IMAGE_PULL_ERROR"
    CONTAINER_CRASHLOOP = "CONTAINER_CRASHLOOP"
    CONTAINER_CONFIG_ERROR = "CONTAINER_CONFIG_ERROR"
    POD_UNSCHEDULABLE = "POD_UNSCHEDULABLE"
    POD_FAILED = "POD_FAILED"
    JOB_FAILED = "JOB_FAILED"
    ROLLOUT_FAILED = "ROLLOUT_FAILED"
    READINESS_TIMEOUT = "READINESS_TIMEOUT"
    E2E_FAILED = "E2E_FAILED"
    E2E_NO_TESTS = "E2E_NO_TESTS"
    MANIFEST_UNSUPPORTED = "MANIFEST_UNSUPPORTED"
    RESOURCE_CONFLICT = "RESOURCE_CONFLICT"
    RUN_IN_PROGRESS = "RUN_IN_PROGRESS"
    ARTIFACTS_UNWRITABLE = "ARTIFACTS_UNWRITABLE"
    MANIFEST_INVALID = "MANIFEST_INVALID"
    MANIFEST_REMOTE_UNREACHABLE = "MANIFEST_REMOTE_UNREACHABLE"
    CRD_NOT_ESTABLISHED = "CRD_NOT_ESTABLISHED"
    BUILD_CONTEXT_INVALID = "BUILD_CONTEXT_INVALID"
    UPSTREAM_FAILED = "UPSTREAM_FAILED"
    IMAGE_PUSH_FAILED = "IMAGE_PUSH_FAILED"
    IMAGE_NOT_IN_REGISTRY = "IMAGE_NOT_IN_REGISTRY"
    CONTEXT_NOT_ALLOWED = "CONTEXT_NOT_ALLOWED"
    CONTEXT_NOT_FOUND = "CONTEXT_NOT_FOUND"
    CLUSTER_FORBIDDEN = "CLUSTER_FORBIDDEN"
    INTERRUPTED = "INTERRUPTED"
    INTERNAL_ERROR = "INTERNAL_ERROR"


@dataclass(frozen=True)
class CommandEvidence:
    """The external command behind a failure: what ran and how it ended."""

    argv: list[str]
    exit_code: int | None

    def to_json(self) -> dict[str, Any]:
        return {"argv": [str(a) for a in self.argv], "exit_code": self.exit_code}


@dataclass
class StagegateError(Exception):
    """An expected failure: reported in error.json, never with a traceback."""

    code: Code
    message: str
    hint: str = ""
    subject: dict[str, Any] = field(default_factory=dict)
    command: CommandEvidence | None = None
    log_excerpt: str = ""
    log_file: str | None = None
    # Further failures of the same stage (``--keep-going``, verify's full report).
    others: list[StagegateError] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    def summary_json(self) -> dict[str, Any]:
        """The short form used for the list of further failures in error.json."""
        return {"code": str(self.code), "message": self.message, "subject": self.subject}


class TransientError(StagegateError):
    """A failure that may pass when retried (daemon hiccup, API server connection)."""


def config_error(key: str, message: str, hint: str, **subject: Any) -> StagegateError:
    """A ``CONFIG_INVALID`` error about ``key`` (a dotted key path or an option)."""
    return StagegateError(Code.CONFIG_INVALID, message, hint, {"key": key, **subject})
