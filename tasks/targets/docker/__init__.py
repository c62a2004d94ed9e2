"""The docker target: the rendered manifests played on the Docker engine, in the spirit of
``podman kube play`` — a fast inner loop, and a real end-to-end run where kind cannot run.

Pod templates of Deployments, StatefulSets, Jobs and Pods become containers (command, args,
env from values, ConfigMaps and Secrets of the same manifests, working dir, ports, emptyDir,
ConfigMap and Secret volumes); a Service's name is a network alias of the containers it
selects, so in-cluster URLs such as ``http://api-server:8080`` work unchanged, and where a
Service's port differs from its targetPort a small forwarder takes the name and maps the
ports, as kube-proxy does (``http://api`` on 80 reaching a container's 8080). It behaves
like a kubelet where tests can tell: startup, readiness and liveness probes with their
periods and thresholds, restarts per ``restartPolicy`` with the crash back-off and a real
``restartCount``, Jobs run to completion within ``backoffLimit``, ``emptyDir`` writable by
any user, named ports resolved. Pods, workloads and events are reported in the Kubernetes
API's own JSON shape, so the same readiness policy and error codes apply as on kind.

- :mod:`.plans`       what will run: ContainerPlan, PodPlan, WorkloadPlan
- :mod:`.translate`   manifests -> plans; refuses, listing every problem, what it cannot honour
- :mod:`.volumes`     ConfigMap and Secret data and volumes: checked as the API server does, files written
- :mod:`.kubelet`     start containers, run probes, restart them with back-off
- :mod:`.pods`        the kubelet's record of its pods, and the pod JSON made from it
- :mod:`.probes`      one probe run and its failure in the kubelet's words
- :mod:`.controllers` the Job controller; Deployment/StatefulSet/Job status from the pods
- :mod:`.status`      pure pieces: the back-off, the pod phase and conditions
- :mod:`.events`      ``v1`` Events, folded with counts as the kubelet's recorder does
- :mod:`.forwarder`   the forwarder of a Service whose ports differ from their targets
- :mod:`.labels`      the labels of everything it creates
- :mod:`.target`      :class:`DockerTarget`: up, load_images, apply, wait_ready, endpoints, ...

The kubelet runs while the target is polled (deploy's readiness wait): a container that
exits during the e2e stage is not restarted.
"""

from .labels import LABEL_PROJECT, LABEL_TARGET
from .plans import MAX_REPLICAS, ContainerPlan, PodPlan, WorkloadPlan
from .target import DockerTarget
from .translate import translate

__all__ = [
    "LABEL_PROJECT",
    "LABEL_TARGET",
    "MAX_REPLICAS",
    "ContainerPlan",
    "DockerTarget",
    "PodPlan",
    "WorkloadPlan",
    "translate",
]
