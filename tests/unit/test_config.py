"""Settings: layered defaults → params.yaml → environment → overrides; nothing at import."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

from lifecycle.config import load_settings
from lifecycle.errors import ConfigError


@pytest.fixture
def kit(tmp_path, monkeypatch):
    root = tmp_path / "kit"
    (root / "notebooks").mkdir(parents=True)
    (root / "params.yaml").write_text("settings:\n  seed: 11\n  registered_model: from-file\n")
    for name in ("LIFECYCLE_WORKSPACE", "LIFECYCLE_BUILD", "LIFECYCLE_SEED", "LIFECYCLE_REGISTERED_MODEL"):
        monkeypatch.delenv(name, raising=False)
    return root


def test_defaults_and_params_file(kit):
    settings = load_settings(root=kit)
    assert settings.seed == 11 and settings.registered_model == "from-file"
    assert settings.workspace == kit / "workspace"
    assert settings.build == kit / "build"
    assert settings.mlflow_tracking_uri == f"sqlite:///{kit / 'workspace' / 'mlflow.db'}"
    assert settings.dvc_remote_url == str(kit / "workspace" / "dvc-remote")


def test_environment_wins_over_file_and_overrides_win_over_environment(kit, monkeypatch):
    monkeypatch.setenv("LIFECYCLE_SEED", "7")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert load_settings(root=kit).seed == 7
    assert load_settings(root=kit).mlflow_tracking_uri == "http://127.0.0.1:5000"
    assert load_settings(root=kit, seed=3).seed == 3


def test_root_is_found_from_a_subfolder(kit, monkeypatch):
    monkeypatch.chdir(kit / "notebooks")
    monkeypatch.delenv("LIFECYCLE_ROOT", raising=False)
    assert load_settings().root == kit


def test_settings_are_frozen(kit):
    with pytest.raises(dataclasses.FrozenInstanceError):
        load_settings(root=kit).seed = 1


def test_bad_values_are_named(kit, monkeypatch):
    with pytest.raises(ConfigError, match=r"unknown setting\(s\) \['colour'\]"):
        load_settings(root=kit, colour="red")
    monkeypatch.setenv("LIFECYCLE_SEED", "many")
    with pytest.raises(ConfigError, match="seed must be an integer, got 'many'"):
        load_settings(root=kit)
    (kit / "params.yaml").write_text("settings:\n  sede: 1\n")
    monkeypatch.delenv("LIFECYCLE_SEED")
    with pytest.raises(ConfigError, match=r"unknown setting\(s\) \['sede'\] under 'settings:'"):
        load_settings(root=kit)


def test_loading_creates_nothing(kit):
    load_settings(root=kit)
    assert not (kit / "workspace").exists() and not (kit / "build").exists()


def test_importing_the_kit_has_no_side_effects(tmp_path):
    code = ("import os, lifecycle, lifecycle.config, lifecycle.data, lifecycle.features, lifecycle.training, "
            "lifecycle.course.runner, lifecycle.cli; print(sorted(os.listdir('.')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
