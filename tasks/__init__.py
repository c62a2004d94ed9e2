"""stagegate's task library (its home is ``tasks/``; it installs and imports as ``stagegate``).
Noxfiles call :func:`stagegate.nox.register` (the one module that imports nox), whose sessions
call :mod:`stagegate.cli`.

Where things are:

- :mod:`stagegate.nox`         the sessions, for any noxfile: ``stagegate.nox.register()``
- :mod:`stagegate.config`      ``[tool.stagegate]`` loaded and validated (pydantic) into ``ImageSpec``s
- :mod:`stagegate.profiles`    which ``[tool.stagegate.profiles.<name>]`` a run applies, kept for the run
- :mod:`stagegate.init`        ``python -m stagegate init``: a starting configuration for a repository
- :mod:`stagegate.adopt`       what init reads: skaffold.yaml, compose files, where the manifests are
- :mod:`stagegate.options`     the option set every pipeline session takes after ``--``
- :mod:`stagegate.pipeline`    the gate: runs a stage, records it in the ledger, writes error.json
- :mod:`stagegate.ledger`      ``run.json`` / ``error.json``, atomic writes, the upstream guard
- :mod:`stagegate.stagelist`   the pipeline's stages in order, with the line ``nox -l`` shows for each
- :mod:`stagegate.runlock`     one run at a time per artifacts dir (a lock held for the process's life)
- :mod:`stagegate.ownership`   the owner id and label on everything stagegate creates
- :mod:`stagegate.redact`      the one redaction every writer goes through (secrets never in clear)
- :mod:`stagegate.errors`      ``StagegateError`` and the catalogue of stable error codes
- :mod:`stagegate.imageinputs` an image's inputs, hashed into its tag and saved for verify; the built image's record
- :mod:`stagegate.imagerecord` an image's statuses in run.json and the reader of the images a run can use
- :mod:`stagegate.stages`      one module per stage: preflight, build, verify, cluster, deploy, e2e; a
  stage's parts beside it (``build_image``, ``preflight_bases``, ``verify_smoke``…)
- :mod:`stagegate.targets`     where images run: the ``Target`` interface, ``kind``, ``docker``, ``existing``
- :mod:`stagegate.targets.docker` the docker target: translator, a small kubelet, the Job controller
- :mod:`stagegate.targets.kubectl` what the kubectl-driven targets share: kind, and ``existing``
  (a cluster stagegate did not create: one namespace per run, images from the registry)
- :mod:`stagegate.targets.kind_registry` kind with a local registry: pushed to instead of ``kind load``
- :mod:`stagegate.registry`    ``--push``: content-hash tags, skip-if-present, repository digests
- :mod:`stagegate.bundle`      ``--bundle-out`` / ``--bundle-in``: a run's images in one archive with its records
- :mod:`stagegate.resultcache` the e2e result cache: the key of a run's inputs, pass records kept
  locally and in the registry, cluster/deploy/e2e passed from a recorded pass
- :mod:`stagegate.readiness`   is it ready, can it still be: rules per kind, pod states, the waiter,
                          and ``python -m stagegate.readiness`` to explain a verdict from kubectl JSON
- :mod:`stagegate.kinds`       the Kubernetes kind sets, each named for its one use
- :mod:`stagegate.manifests`   render (kustomize or YAML), walk container images, rewrite to built tags
- :mod:`stagegate.builder`     buildx and legacy builders behind one interface; build-failure parsing
- :mod:`stagegate.dockerfile`  instructions, line numbers, ARGs, ``FROM`` images and ``COPY`` sources of a Dockerfile
- :mod:`stagegate.buildcontext` what of a build context Docker sends (``.dockerignore``) and ``COPY``/``ADD`` take
- :mod:`stagegate.hashing`     input hashes of those files and the rest of an image's inputs, that become image tags
- :mod:`stagegate.references`  image references: repository, tag
- :mod:`stagegate.graph`       the image dependency graph
- :mod:`stagegate.reports`     junit.xml, GitHub annotations and job summary, from the ledger
- :mod:`stagegate.prune`       old ``sg-`` tags removed, the current run's and the newest kept
- :mod:`stagegate.engine`      the engine's read-only answers from the docker CLI's JSON (what a no-op run asks)
- :mod:`stagegate.dockerclient` the python-on-whales client, made on first use
- :mod:`stagegate.signals`     SIGINT, SIGTERM and SIGHUP as one interruption; a second one ends it at once
- :mod:`stagegate.runner`      the one way to run external programs other than Docker
- :mod:`stagegate.retry`       tenacity retries for transient Docker errors (never for builds)
- :mod:`stagegate.ui`          everything printed: live build lines, the summary table
- :mod:`stagegate.clock`       injectable time
- :mod:`stagegate.filetypes`   a stat mode in words (FIFOs are never opened)
"""
