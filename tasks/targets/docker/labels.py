"""The labels of everything the docker target creates: the owner labels (target, project)
that teardown filters on, and what a container is in Kubernetes terms."""

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
LABEL_SECRET_ENV = "dev.stagegate.secret-env"  # names only: their values are redacted in diagnostics
