"""The one error type of stagegate and its catalogue of stable codes.

Every expected failure is a :class:`StagegateError` carrying a code from :class:`Code`, a
one-line message, a hint and a subject (the keys that apply: image, file, line, ...). The
stage runner (:mod:`stagegate.pipeline`) turns it into ``error.json``; anything else that
escapes a stage is recorded as ``INTERNAL_ERROR`` with its traceback.

Each code is declared with its :class:`FailureClass`: whether re-running the same inputs can
help (the machine or network) or not (the product, the configuration, a bug in stagegate).
An error may override its code's class where that one failure is known to be of another kind;
:func:`rerun_advice` says the class in words for the terminal, the job summary and annotations.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class FailureClass(enum.StrEnum):
    """What a failure is a failure of, hence whether a re-run of the same inputs can help."""

    PRODUCT = "product"  # a build step, a manifest, a pod that cannot run, a failing test
    ENVIRONMENT = "environment"  # the machine or network: engine gone, registry, API server
    CONFIGURATION = "configuration"  # stagegate's, the repository's or the machine's set-up
    INTERNAL = "internal"  # a bug in stagegate

    @property
    def rerun_may_pass(self) -> bool:
        return self is FailureClass.ENVIRONMENT


PRODUCT = FailureClass.PRODUCT
ENVIRONMENT = FailureClass.ENVIRONMENT
CONFIGURATION = FailureClass.CONFIGURATION
INTERNAL = FailureClass.INTERNAL


class Code(enum.StrEnum):
    """Error codes of error.json, each with its failure class. Extend as needed, never rename."""

    failure_class: FailureClass

    def __new__(cls, value: str, failure_class: FailureClass) -> Code:
        member = str.__new__(cls, value)
        member._value_ = value
        member.failure_class = failure_class
        return member

    CONFIG_INVALID = "CONFIG_INVALID", CONFIGURATION
    DOCKER_UNAVAILABLE = "DOCKER_UNAVAILABLE", ENVIRONMENT
    # the machine's set-up: the same runner lacks it again on a re-run
    TOOL_MISSING = "TOOL_MISSING", CONFIGURATION
    # a FROM that no registry serves; one whose registry did not answer is ENVIRONMENT
    BASE_IMAGE_MISSING = "BASE_IMAGE_MISSING", PRODUCT
    # an engine lost mid-build is DOCKER_UNAVAILABLE instead (the build stage)
    BUILD_FAILED = "BUILD_FAILED", PRODUCT
    BUILDKIT_REQUIRED = "BUILDKIT_REQUIRED", CONFIGURATION
    # removed or re-tagged under the run by something else; a re-run builds it again
    IMAGE_MISSING = "IMAGE_MISSING", ENVIRONMENT
    # the sources changed under the run; a re-run builds what is there
    IMAGE_STALE = "IMAGE_STALE", ENVIRONMENT
    PLATFORM_MISMATCH = "PLATFORM_MISMATCH", PRODUCT
    SMOKE_FAILED = "SMOKE_FAILED", PRODUCT
    MANIFEST_IMAGE_UNKNOWN = "MANIFEST_IMAGE_UNKNOWN", PRODUCT
    PULL_POLICY_INVALID = "PULL_POLICY_INVALID", PRODUCT
    # kind's node start and API server wait time out on a busy machine
    CLUSTER_CREATE_FAILED = "CLUSTER_CREATE_FAILED", ENVIRONMENT
    IMAGE_LOAD_FAILED = "IMAGE_LOAD_FAILED", ENVIRONMENT
    # the API server refused the manifests; losing it is CLUSTER_UNREACHABLE
    APPLY_FAILED = "APPLY_FAILED", PRODUCT
    CLUSTER_UNREACHABLE = "CLUSTER_UNREACHABLE", ENVIRONMENT
    # with its root cause: an image of this run not loaded, or a wrong reference
    IMAGE_PULL_ERROR = "IMAGE_PULL_ERROR", PRODUCT
    CONTAINER_CRASHLOOP = "CONTAINER_CRASHLOOP", PRODUCT
    CONTAINER_CONFIG_ERROR = "CONTAINER_CONFIG_ERROR", PRODUCT
    # requests or selectors that no node of the same cluster meets on a re-run
    POD_UNSCHEDULABLE = "POD_UNSCHEDULABLE", PRODUCT
    POD_FAILED = "POD_FAILED", PRODUCT
    JOB_FAILED = "JOB_FAILED", PRODUCT
    ROLLOUT_FAILED = "ROLLOUT_FAILED", PRODUCT
    # what cannot become ready fails at once; what is left is a probe that never passes
    # or a wait on something that never comes (a slow machine: raise [tool.stagegate.deploy] timeout)
    READINESS_TIMEOUT = "READINESS_TIMEOUT", PRODUCT
    E2E_FAILED = "E2E_FAILED", PRODUCT
    # the e2e command or its selection runs nothing
    E2E_NO_TESTS = "E2E_NO_TESTS", CONFIGURATION
    # the manifests may be fine; the chosen target cannot run them
    MANIFEST_UNSUPPORTED = "MANIFEST_UNSUPPORTED", CONFIGURATION
    # another checkout's object under our name: it is there again on a re-run
    RESOURCE_CONFLICT = "RESOURCE_CONFLICT", CONFIGURATION
    # another run holds the artifacts dir; a run after it passes
    RUN_IN_PROGRESS = "RUN_IN_PROGRESS", ENVIRONMENT
    # a full or read-only file system of the machine
    ARTIFACTS_UNWRITABLE = "ARTIFACTS_UNWRITABLE", ENVIRONMENT
    MANIFEST_INVALID = "MANIFEST_INVALID", PRODUCT
    MANIFEST_REMOTE_UNREACHABLE = "MANIFEST_REMOTE_UNREACHABLE", ENVIRONMENT
    # names the API server did not accept, or a CRD it never serves
    CRD_NOT_ESTABLISHED = "CRD_NOT_ESTABLISHED", PRODUCT
    BUILD_CONTEXT_INVALID = "BUILD_CONTEXT_INVALID", PRODUCT
    # a stage started without its prerequisites; with the upstream error in
    # 'cause' it takes that error's class instead (the ledger)
    UPSTREAM_FAILED = "UPSTREAM_FAILED", CONFIGURATION
    IMAGE_PUSH_FAILED = "IMAGE_PUSH_FAILED", ENVIRONMENT
    # the jobs' wiring: the image was never pushed (or the registry dropped it)
    IMAGE_NOT_IN_REGISTRY = "IMAGE_NOT_IN_REGISTRY", CONFIGURATION
    CONTEXT_NOT_ALLOWED = "CONTEXT_NOT_ALLOWED", CONFIGURATION
    CONTEXT_NOT_FOUND = "CONTEXT_NOT_FOUND", CONFIGURATION
    CLUSTER_FORBIDDEN = "CLUSTER_FORBIDDEN", CONFIGURATION
    # the jobs' wiring: a bundle that is missing, incomplete, corrupt or changed since written
    BUNDLE_INVALID = "BUNDLE_INVALID", CONFIGURATION
    # a bundle of another commit or of another image configuration than this checkout's
    BUNDLE_MISMATCH = "BUNDLE_MISMATCH", CONFIGURATION
    # nothing failed: a re-run may pass
    INTERRUPTED = "INTERRUPTED", ENVIRONMENT
    INTERNAL_ERROR = "INTERNAL_ERROR", INTERNAL


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
    # This failure's class where it is not its code's (rare: say why where it is set).
    class_override: FailureClass | None = None

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    @property
    def failure_class(self) -> FailureClass:
        """The class error.json records: this error's own, else its code's."""
        return self.class_override or self.code.failure_class

    def summary_json(self) -> dict[str, Any]:
        """The short form used for the list of further failures in error.json."""
        return {
            "code": str(self.code),
            "class": str(self.failure_class),
            "message": self.message,
            "subject": self.subject,
        }


def rerun_advice(error: Mapping[str, Any]) -> str:
    """Whether a re-run can help, in words, from an error.json document: "a re-run may pass:
    …" (the environment) or "re-running will not help: fix …" (anything else). A document
    without a class (written before classes existed) is read by its code's."""
    klass = failure_class_of(error)
    if klass is FailureClass.ENVIRONMENT:
        return f"a re-run may pass: {_unprefixed(error)}"
    if klass is FailureClass.INTERNAL:
        return "re-running will likely not help: this is a bug in stagegate (report it with error.json)"
    subject = error.get("subject") or {}
    if subject.get("file"):
        where = f"{subject['file']}:{subject['line']}" if subject.get("line") else str(subject["file"])
        return f"re-running will not help: fix {where}"
    if klass is FailureClass.CONFIGURATION:
        key = f" ({subject['key']})" if subject.get("key") else ""
        return f"re-running will not help: fix the configuration{key}"
    return "re-running will not help: the same inputs fail the same way"


def failure_class_of(error: Mapping[str, Any]) -> FailureClass:
    """The class of an error.json document (or of an entry of its ``others``)."""
    try:
        return FailureClass(error.get("class"))
    except ValueError:
        pass
    try:
        return Code(error.get("code")).failure_class
    except ValueError:
        return FailureClass.INTERNAL


def _unprefixed(error: Mapping[str, Any]) -> str:
    """The message without the ``image: `` it starts with (the summary names the image)."""
    message = str(error.get("message") or "")
    image = (error.get("subject") or {}).get("image")
    return message.removeprefix(f"{image}: ") if image else message


ARTIFACTS_HINT = "make it writable, or point STAGEGATE_ARTIFACTS (or [tool.stagegate] artifacts) elsewhere"


def artifacts_unwritable(
    artifacts: Path, problem: object, file: Path | str, hint: str = ARTIFACTS_HINT
) -> StagegateError:
    """``ARTIFACTS_UNWRITABLE``: the artifacts dir refused a write (``file``, in it or the dir itself)."""
    return StagegateError(
        Code.ARTIFACTS_UNWRITABLE,
        f"the artifacts dir {artifacts} cannot be written: {problem}",
        hint,
        {"key": "artifacts", "file": str(file)},
    )


def config_error(key: str, message: str, hint: str, **subject: Any) -> StagegateError:
    """A ``CONFIG_INVALID`` error about ``key`` (a dotted key path or an option)."""
    return StagegateError(Code.CONFIG_INVALID, message, hint, {"key": key, **subject})
