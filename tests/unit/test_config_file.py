"""Where [tool.stagegate] lives: pyproject.toml, or stagegate.toml at the repository root for
repositories without a pyproject.toml of their own — never both silently."""

from __future__ import annotations

from pathlib import Path

from stagegate.config import artifacts_dir, config_file, load_config

from tests.unit.test_config import config_error

TABLE = '[tool.stagegate]\nartifacts = "out/sg"\n[[tool.stagegate.images]]\nname = "t/app"\ncontext = "app"\n'


def repo(root: Path, files: dict[str, str]) -> Path:
    (root / "app").mkdir(parents=True)
    (root / "app" / "Dockerfile").write_text("FROM busybox\n")
    for name, text in files.items():
        (root / name).write_text(text)
    return root


def test_stagegate_toml_is_read_when_there_is_no_pyproject(tmp_path: Path) -> None:
    root = repo(tmp_path, {"stagegate.toml": TABLE})
    assert config_file(root) == "stagegate.toml"
    assert list(load_config(root, {}).images) == ["t/app"]
    assert artifacts_dir(root, {}) == (root / "out" / "sg").resolve()


def test_stagegate_toml_is_read_when_the_pyproject_has_no_stagegate_table(tmp_path: Path) -> None:
    root = repo(tmp_path, {"pyproject.toml": '[project]\nname = "x"\n', "stagegate.toml": TABLE})
    assert config_file(root) == "stagegate.toml" and list(load_config(root, {}).images) == ["t/app"]


def test_pyproject_toml_stays_the_place_without_a_stagegate_toml(tmp_path: Path) -> None:
    root = repo(tmp_path, {"pyproject.toml": TABLE})
    assert config_file(root) == "pyproject.toml" and list(load_config(root, {}).images) == ["t/app"]


def test_both_holding_the_table_is_an_error_naming_both(tmp_path: Path) -> None:
    root = repo(tmp_path, {"pyproject.toml": TABLE, "stagegate.toml": TABLE})
    error = config_error(root)
    assert "both pyproject.toml and stagegate.toml hold a [tool.stagegate] table" in error.message


def test_errors_in_stagegate_toml_name_that_file(tmp_path: Path) -> None:
    root = repo(tmp_path, {"stagegate.toml": "[tool.stagegate\n"})
    error = config_error(root)
    assert error.message.startswith("stagegate.toml is not valid TOML")
