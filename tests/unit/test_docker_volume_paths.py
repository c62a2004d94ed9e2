"""ConfigMap/Secret volumes of the docker target become files under the artifacts dir: keys and
``items`` paths are validated as the API server does, nothing is written outside, and decoded
Secrets sit behind a folder no other user of the machine may enter (no engine needed)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
import yaml
from stagegate.errors import Code, StagegateError
from stagegate.manifests import ManifestObject
from stagegate.targets.docker import translate
from stagegate.targets.docker.volumes import SECRETS_DIR

POD = """
apiVersion: v1
kind: {kind}
metadata: {{name: conf, namespace: demo}}
{data}: {{{key!r}: {value}}}
---
apiVersion: v1
kind: Pod
metadata: {{name: app, namespace: demo}}
spec:
  volumes: [{{name: files, {volume}}}]
  containers:
    - name: app
      image: busybox
      volumeMounts: [{{name: files, mountPath: /files}}]
"""


def objects(kind: str = "ConfigMap", key: str = "a.txt", volume: str = "", value: str = "hello") -> list:
    data = "stringData" if kind == "Secret" else "data"
    volume = volume or ("secret: {secretName: conf}" if kind == "Secret" else "configMap: {name: conf}")
    text = POD.format(kind=kind, data=data, key=key, value=value, volume=volume)
    return [ManifestObject("k8s/app.yaml", doc) for doc in yaml.safe_load_all(text) if doc]


def refused(objs: list, workdir: Path) -> StagegateError:
    with pytest.raises(StagegateError) as caught:
        translate(objs, workdir=workdir)
    assert caught.value.code == Code.MANIFEST_UNSUPPORTED
    return caught.value


@pytest.mark.parametrize("kind", ["ConfigMap", "Secret"])
def test_a_key_that_climbs_out_is_refused_and_nothing_is_written_outside(kind: str, tmp_path: Path) -> None:
    workdir = tmp_path / "repo" / ".stagegate" / "docker-target"
    escaped = tmp_path / "escaped"
    key = "../" * 30 + str(escaped).lstrip("/")
    error = refused(objects(kind, key=key), workdir)
    assert f"{kind}/conf" in error.message and repr(key) in error.message
    assert "[-._a-zA-Z0-9]+" in error.message
    assert not escaped.exists()
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []  # not even inside


@pytest.mark.parametrize("key", [".", "..", "a/b", "with space"])
def test_keys_the_api_server_refuses_are_refused(key: str, tmp_path: Path) -> None:
    assert repr(key) in refused(objects(key=key), tmp_path).message


@pytest.mark.parametrize("path", ["../up.txt", "/etc/passwd", "a/../../b", ".."])
def test_an_items_path_that_leaves_the_volume_is_refused(path: str, tmp_path: Path) -> None:
    volume = f"configMap: {{name: conf, items: [{{key: a.txt, path: {path!r}}}]}}"
    error = refused(objects(volume=volume), tmp_path / "work")
    assert repr(path) in " ".join(error.subject["unsupported"])
    assert not (tmp_path / "up.txt").exists() and not (tmp_path / "b").exists()


def test_items_select_keys_onto_relative_paths(tmp_path: Path) -> None:
    volume = "configMap: {name: conf, items: [{key: a.txt, path: sub/dir/renamed.txt}]}"
    [pod] = translate(objects(volume=volume), workdir=tmp_path)
    [(folder, mount, mode)] = pod.containers[0].mounts
    assert (mount, mode) == ("/files", "ro")
    assert (Path(folder) / "sub/dir/renamed.txt").read_text() == "hello"
    assert not (Path(folder) / "a.txt").exists()


def test_a_secret_name_that_is_a_path_is_refused(tmp_path: Path) -> None:
    text = POD.format(kind="Secret", data="stringData", key="a", value="x", volume="secret: {secretName: x}")
    docs = [doc for doc in yaml.safe_load_all(text) if doc]
    docs[0]["metadata"]["name"] = docs[1]["spec"]["volumes"][0]["secret"]["secretName"] = "../../out"
    error = refused([ManifestObject("k8s/app.yaml", d) for d in docs], tmp_path / "work")
    assert "'../../out' is not a valid name" in error.message
    assert not (tmp_path / "out").exists()


def test_decoded_secrets_sit_behind_a_folder_only_its_owner_may_enter(tmp_path: Path) -> None:
    [pod] = translate(objects("Secret", key="TOKEN", value="s3cret"), workdir=tmp_path)
    [(folder, _, _)] = pod.containers[0].mounts
    guard = tmp_path / SECRETS_DIR
    assert Path(folder).is_relative_to(guard)
    assert stat.S_IMODE(guard.stat().st_mode) == 0o700  # no other user of this machine gets in
    assert (Path(folder) / "TOKEN").read_text() == "s3cret"
    # inside, the modes Kubernetes gives (0644 unless defaultMode/mode say otherwise), so that a
    # container of any user reads its Secret as on a kubelet
    assert stat.S_IMODE((Path(folder) / "TOKEN").stat().st_mode) == 0o644
    [configured] = translate(
        objects(
            "Secret", key="TOKEN", value="s3cret", volume="secret: {secretName: conf, defaultMode: 0400}"
        ),
        workdir=tmp_path,
    )
    [(other, _, _)] = configured.containers[0].mounts
    assert stat.S_IMODE((Path(other) / "TOKEN").stat().st_mode) == 0o400


def test_secret_data_that_is_not_base64_is_refused_without_quoting_it(tmp_path: Path) -> None:
    objs = objects("Secret", key="TOKEN", value="czNjcmV0")
    objs[0].doc["data"] = objs[0].doc.pop("stringData") | {"OTHER": "not*base64!"}
    error = refused(objs, tmp_path)
    assert error.subject["unsupported"] == [
        "Secret/conf (k8s/app.yaml): data key 'OTHER' is not base64-encoded UTF-8 text"
    ]
