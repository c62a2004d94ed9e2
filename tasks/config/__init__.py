"""``[tool.stagegate]`` in pyproject.toml: loaded, validated, resolved.

:func:`load_config` returns a :class:`Config` whose images are :class:`ImageSpec` with absolute
paths, interpolated build args and complete dependencies (``depends_on`` plus ``FROM`` lines
naming a configured image). Every problem is a ``CONFIG_INVALID`` error with the key path and
a hint; nothing half-valid escapes.

Secret build args — listed in ``secret_build_args`` or named like a secret
(:func:`stagegate.redact.is_secret_name`) — are registered for redaction as soon as their value is
known, before anything can write it.

- :mod:`.models` — the tables as written (pydantic), profiles' overrides, the file names.
- :mod:`.resolved` — :class:`Config` and :class:`ImageSpec`: what a run uses.
- :mod:`.load` — :func:`load_config`: found, read, validated, interpolated, resolved.
- :mod:`.images` — one ``[[tool.stagegate.images]]`` entry resolved to an :class:`ImageSpec`.
- :mod:`.paths` — paths the configuration names, inside the repository and of the right kind.
- :mod:`.variables` — ``${VAR}``, defaults and required variables in values, as Compose expands them.
- :mod:`.kustomize` — the ``kubectl kustomize`` flags ``kustomize_args`` may pass.
- :mod:`.errors` — pydantic's errors as ``CONFIG_INVALID`` with the key path and a hint.
"""

from .load import artifacts_dir, config_file, load_config
from .models import DEFAULT_ARTIFACTS, PORT_FORWARD_TYPES, PYPROJECT, SECTION, STAGEGATE_TOML, unknown_profile
from .resolved import (
    ClusterConfig,
    Config,
    DeployConfig,
    E2EConfig,
    ExistingConfig,
    ImageSpec,
    PortForward,
    RegistryConfig,
)
from .variables import interpolate

__all__ = [
    "DEFAULT_ARTIFACTS",
    "PORT_FORWARD_TYPES",
    "PYPROJECT",
    "SECTION",
    "STAGEGATE_TOML",
    "ClusterConfig",
    "Config",
    "DeployConfig",
    "E2EConfig",
    "ExistingConfig",
    "ImageSpec",
    "PortForward",
    "RegistryConfig",
    "artifacts_dir",
    "config_file",
    "interpolate",
    "load_config",
    "unknown_profile",
]
