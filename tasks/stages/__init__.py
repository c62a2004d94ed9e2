"""The gated stages. Each is a function ``run(ctx: StageContext) -> None`` that fills
``ctx.outputs`` as it goes and raises :class:`stagegate.errors.StagegateError` when it fails;
:mod:`stagegate.pipeline` runs it, times it and records the result in the ledger.

One module per stage (``build``, ``preflight``…); a stage's parts sit beside it as
``<stage>_<part>`` (``build_image``, ``verify_smoke``…), and ``manifest_checks`` holds the
manifests' checks that preflight and verify share."""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..clock import Clock
from ..config import Config
from ..ledger import Ledger
from ..options import Options
from ..ui import Reporter

if TYPE_CHECKING:
    from python_on_whales import DockerClient

    from ..dockerclient import DeferredDockerClient
    from ..targets import TargetTraits


@dataclass
class StageContext:
    """What a stage may use. Everything with side effects is injected here."""

    config: Config
    options: Options
    docker: DockerClient | DeferredDockerClient
    ledger: Ledger
    reporter: Reporter
    clock: Clock
    run: dict[str, Any]  # run.json as it was when the stage began
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    outputs: dict[str, Any] = field(default_factory=dict)

    @property
    def artifacts(self) -> Path:
        return self.config.artifacts

    @functools.cached_property
    def target_traits(self) -> TargetTraits:
        """What is known of the run's target before it is opened (``--target``, else the
        configuration's); worked out once per stage (``auto`` looks for kind on PATH)."""
        from ..targets import traits_of

        return traits_of(self.options.target or self.config.target, self.config)
