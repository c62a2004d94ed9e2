"""The labels of everything the docker target creates: the owner labels (target, project,
and the owner id of :mod:`stagegate.ownership`, the one that decides) that teardown, redeploy and
reuse filter on, and what a container is in Kubernetes terms."""

from ...errors import Code, StagegateError
from ...ownership import OWNER_LABEL

LABEL_OWNER = OWNER_LABEL
LABEL_TARGET = "dev.stagegate.target"
LABEL_PROJECT = "dev.stagegate.project"
LABEL_POD = "dev.stagegate.pod"
LABEL_POD_UID = "dev.stagegate.pod-uid"
LABEL_NAMESPACE = "dev.stagegate.namespace"
LABEL_CONTAINER = "dev.stagegate.container"
LABEL_INIT = "dev.stagegate.init"
LABEL_WORKLOAD = "dev.stagegate.workload"
LABEL_ALIASES = "dev.stagegate.aliases"
LABEL_PORTS = "dev.stagegate.ports"  # named container ports: "http=8080,metrics=9090"
LABEL_RESTARTS = "dev.stagegate.restart-count"
LABEL_FORWARDER = "dev.stagegate.forwarder"  # the Service whose ports a forwarder maps
LABEL_SECRET_ENV = "dev.stagegate.secret-env"  # names only: their values are redacted in diagnostics


def conflict(kind: str, name: str, project: str) -> StagegateError:
    """An object of the name stagegate would give its own, which stagegate did not create (for
    this checkout): never adopted, never deleted."""
    return StagegateError(
        Code.RESOURCE_CONFLICT,
        f"a Docker {kind} named {name} exists that this checkout's stagegate did not create "
        "(it lacks its owner label): it is left alone",
        f"remove or rename that {kind} if it is a leftover, or set another "
        f"`[tool.stagegate.cluster] name` than {project!r} in pyproject.toml",
        {kind: name, "cluster": project},
    )
