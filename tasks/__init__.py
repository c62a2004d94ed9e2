"""stagegate's task library. ``noxfile.py`` calls :mod:`tasks.cli`; nothing here imports nox.

Where things are:

- :mod:`tasks.config`      ``[tool.stagegate]`` loaded and validated (pydantic) into ``ImageSpec``s
- :mod:`tasks.options`     the option set every pipeline session takes after ``--``
- :mod:`tasks.pipeline`    the gate: runs a stage, records it in the ledger, writes error.json
- :mod:`tasks.ledger`      ``run.json`` / ``error.json``, atomic writes, the upstream guard, PIPELINE
- :mod:`tasks.runlock`     one run at a time per artifacts dir (a lock held for the process's life)
- :mod:`tasks.ownership`   the owner id and label on everything stagegate creates
- :mod:`tasks.redact`      the one redaction every writer goes through (secrets never in clear)
- :mod:`tasks.errors`      ``StagegateError`` and the catalogue of stable error codes
- :mod:`tasks.stages`      one module per stage: preflight, build, verify, cluster, deploy, e2e
- :mod:`tasks.targets`     where images run: the ``Target`` interface, ``kind`` and ``docker``
- :mod:`tasks.targets.docker` the docker target: translator, a small kubelet, the Job controller
- :mod:`tasks.readiness`   is it ready, can it still be: rules per kind, pod states, the waiter,
                          and ``python -m tasks.readiness`` to explain a verdict from kubectl JSON
- :mod:`tasks.manifests`   render (kustomize or YAML), walk container images, rewrite to built tags
- :mod:`tasks.builder`     buildx and legacy builders behind one interface; build-failure parsing
- :mod:`tasks.dockerfile`  instructions, line numbers and ``FROM`` images of a Dockerfile
- :mod:`tasks.hashing`     input hashes (``.dockerignore`` honoured) that become image tags
- :mod:`tasks.references`  image references: repository, tag
- :mod:`tasks.graph`       the image dependency graph
- :mod:`tasks.reports`     junit.xml, GitHub annotations and job summary, from the ledger
- :mod:`tasks.prune`       old ``sg-`` tags removed, the current run's and the newest kept
- :mod:`tasks.runner`      the one way to run external programs other than Docker
- :mod:`tasks.retry`       tenacity retries for transient Docker errors (never for builds)
- :mod:`tasks.ui`          everything printed: live build lines, the summary table
- :mod:`tasks.clock`       injectable time
- :mod:`tasks.filetypes`   a stat mode in words (FIFOs are never opened)
"""
