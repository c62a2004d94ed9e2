"""The example stack's worker: claims runs from the API and completes them with their sum."""

from worker.client import SERVICE, process_one, run

__all__ = ["SERVICE", "process_one", "run"]
