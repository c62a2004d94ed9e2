"""What the stages before the cluster know of the run's target (stagegate.targets.traits_of),
and the one factory of every target (open_target): no stage asks which target it has."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from stagegate.config import Config, load_config
from stagegate.dockerclient import DeferredDockerClient
from stagegate.errors import Code, StagegateError
from stagegate.targets import open_target, traits_of
from stagegate.targets.docker import DockerTarget
from stagegate.targets.existing import ExistingTarget
from stagegate.targets.kind import KindTarget

MANIFEST = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: app}
spec:
  selector: {matchLabels: {app: app}}
  template:
    metadata: {labels: {app: app}}
    spec:
      containers:
        - {name: app, image: example/app, imagePullPolicy: POLICY}
"""


def repo(root: Path, *, local_registry: bool = False, policy: str = "IfNotPresent") -> Config:
    (root / "app").mkdir(exist_ok=True)
    (root / "app" / "Dockerfile").write_text("FROM scratch\n")
    (root / "k8s.yaml").write_text(MANIFEST.replace("POLICY", policy))
    (root / "pyproject.toml").write_text(
        textwrap.dedent(
            f"""\
            [[tool.stagegate.images]]
            name = "example/app"
            context = "app"
            [tool.stagegate.deploy]
            manifests = "k8s.yaml"
            [tool.stagegate.cluster]
            name = "traits"
            local_registry = {"true" if local_registry else "false"}
            [tool.stagegate.registry]
            url = "registry.example.com/team"
            [tool.stagegate.existing]
            contexts = ["ci"]
            """
        )
    )
    return load_config(root, env={})


@pytest.mark.parametrize(
    ("requested", "local_registry", "expected"),
    [
        ("kind", False, ("kind", False, False, False)),
        ("kind", True, ("kind", False, True, False)),  # pushed to its local registry, pulled from there
        ("docker", True, ("docker", False, False, False)),  # kind's registry is kind's alone
        ("existing", False, ("existing", True, True, True)),
    ],
)
def test_traits_of_each_target(tmp_path: Path, requested: str, local_registry: bool, expected: tuple) -> None:
    traits = traits_of(requested, repo(tmp_path, local_registry=local_registry))
    assert (
        traits.name,
        traits.pulls_pinned_images,
        traits.pulls_from_registry,
        traits.takes_context,
    ) == expected


def test_one_factory_opens_every_target_new_or_as_the_cluster_stage_recorded_it(tmp_path: Path) -> None:
    config = repo(tmp_path, local_registry=True)
    docker = DeferredDockerClient({})
    kind = open_target("kind", config, docker)
    assert isinstance(kind, KindTarget) and (kind.cluster, kind.local_registry) == ("traits", True)
    assert kind.where == "name 'traits'" and not kind.pulls_pinned_images
    assert open_target("kind", config, docker, recorded={"cluster": "other"}).cluster == "other"
    assert isinstance(open_target("docker", config, docker), DockerTarget)

    new = open_target("existing", config, docker, context="ci", run_id="20261207T000000Z-abcdef")
    assert isinstance(new, ExistingTarget) and new.context == "ci" and new.pulls_pinned_images
    recorded = open_target("existing", config, docker, recorded={"context": "ci", "namespace": "ns-1"})
    assert recorded.where == "context 'ci', namespace 'ns-1'"
    with pytest.raises(StagegateError) as refused:  # teardown of a run whose cluster stage never ran
        open_target("existing", config, docker, recorded={})
    assert refused.value.code is Code.CONFIG_INVALID
    with pytest.raises(StagegateError) as not_allowed:
        open_target("existing", config, docker, context="prod", run_id="r")
    assert not_allowed.value.code is Code.CONTEXT_NOT_ALLOWED
    # a configuration without [tool.stagegate.existing]: refused in words, not an internal error
    (tmp_path / "pyproject.toml").write_text(
        (tmp_path / "pyproject.toml").read_text().split("[tool.stagegate.existing]")[0]
    )
    with pytest.raises(StagegateError) as no_table:
        open_target("existing", load_config(tmp_path, env={}), docker, context="ci", run_id="r")
    assert no_table.value.code is Code.CONFIG_INVALID
