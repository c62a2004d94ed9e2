"""The example stack's HTTP JSON API (service name ``api-server``)."""

from api.server import SERVICE, ApiServer, RunStore

__all__ = ["SERVICE", "ApiServer", "RunStore"]
