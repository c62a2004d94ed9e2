"""The pipeline's stages in order, each with the line ``nox -l`` shows for its session: the one
list the sessions (:mod:`stagegate.nox`), the ledger's upstream guard and the gate read. A
module of no imports, so that ``nox -l`` stays light."""

from __future__ import annotations

#: stage -> its session's description; a stage may run only when all before it passed.
STAGES: dict[str, str] = {
    "preflight": "Check engine, builder, base images and manifest image references before anything runs.",
    "build": "Build every configured image: dependency order, in parallel, unchanged ones skipped; --push pushes.",
    "verify": "Prove the images right: present, current, platform, smoke command, manifests' image references.",
    "cluster": "Create or reuse the target (kind by default; existing: the run's namespace) and put the images there.",
    "deploy": "Apply the manifests at the built tags; wait for readiness, failing fast on pod errors.",
    "e2e": "Run the e2e tests against the deployment (the whole chain: nox -s e2e).",
}

PIPELINE: tuple[str, ...] = tuple(STAGES)
