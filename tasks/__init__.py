"""stagegate's task library. ``noxfile.py`` calls :mod:`tasks.cli`; nothing here imports nox.

Where things are:

- :mod:`tasks.config`     ``[tool.stagegate]`` loaded and validated (pydantic) into ``ImageSpec``s
- :mod:`tasks.options`    the option set every pipeline session takes after ``--``
- :mod:`tasks.pipeline`   the gate: runs a stage, records it in the ledger, writes error.json
- :mod:`tasks.ledger`     ``run.json`` / ``error.json``, atomic writes, the upstream guard
- :mod:`tasks.errors`     ``StagegateError`` and the catalogue of stable error codes
- :mod:`tasks.stages`     one module per stage: ``preflight``, ``build``
- :mod:`tasks.builder`    buildx and legacy builders behind one interface; build-failure parsing
- :mod:`tasks.dockerfile` instructions, line numbers and ``FROM`` images of a Dockerfile
- :mod:`tasks.hashing`    input hashes (``.dockerignore`` honoured) that become image tags
- :mod:`tasks.graph`      the image dependency graph
- :mod:`tasks.runner`     the one way to run external programs other than Docker
- :mod:`tasks.ui`         everything printed: live build lines, the summary table
- :mod:`tasks.clock`      injectable time
"""
