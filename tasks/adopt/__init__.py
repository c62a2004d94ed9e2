"""Readers of what a repository already says, for ``stagegate init``: Skaffold configs
(:mod:`.skaffold`), compose files (:mod:`.compose`) and the Kubernetes manifests themselves
(:mod:`.kubernetes`). Each returns typed proposals and :class:`~.model.Finding` lines saying where
a value came from, or that it has no stagegate equivalent."""
