"""Data versioning helpers, against the real git and dvc in temporary folders."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import pytest

from lifecycle.config import load_settings
from lifecycle.data import generate_transactions, write_transactions
from lifecycle.errors import CommandError, ConfigError
from lifecycle.versioning import (
    DATA_FILE,
    DataRepo,
    clear_cache,
    commit_version,
    data_lineage,
    diff_versions,
    ensure_sandbox,
    file_md5,
    init_sandbox,
    pull_data,
    push_data,
    read_data_version,
    resolve_remote_url,
    restore_version,
    run_command,
    track_data,
    version_data,
    version_frame,
)


def _git_repo(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    run_command(["git", "init", "--quiet"], path)
    return path


def test_file_md5_is_the_md5_of_the_bytes(tmp_path):
    path = tmp_path / "bytes.bin"
    path.write_bytes(b"fraud\n" * 300_000)  # larger than one read block
    assert file_md5(path) == hashlib.md5(path.read_bytes()).hexdigest()


def test_remote_urls_stay_urls_and_local_folders_become_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve_remote_url("s3://bucket/fraud") == "s3://bucket/fraud"
    assert resolve_remote_url("remote") == str(tmp_path / "remote")
    with pytest.raises(ConfigError, match="remote URL is empty"):
        resolve_remote_url("  ")


def test_a_failing_command_raises_with_command_exit_code_output_and_hint(tmp_path):
    repo = DataRepo(_git_repo(tmp_path / "repo"), echo=False)
    with pytest.raises(CommandError) as raised:
        repo.git("checkout", "no-such-tag", "--", "missing.dvc", hint="list the tags with 'git tag'")
    err = raised.value
    assert err.command[1:] == ["checkout", "no-such-tag", "--", "missing.dvc"]
    assert err.returncode not in (0, None)
    assert "no-such-tag" in err.output
    assert "`git checkout no-such-tag -- missing.dvc` failed" in str(err)
    assert "hint: list the tags with 'git tag'" in str(err)


def test_git_never_uses_a_repository_above_the_sandbox(tmp_path, monkeypatch):
    outer = _git_repo(tmp_path / "kit")
    inner = outer / "workspace" / "data-repo"
    inner.mkdir(parents=True)
    monkeypatch.setenv("GIT_DIR", str(outer / ".git"))  # as inside a git hook of the kit
    with pytest.raises(CommandError, match="not a git repository"):
        run_command(["git", "status"], inner)
    with pytest.raises(ConfigError, match="not a git repository of its own"):
        DataRepo(inner)


def test_init_sandbox_refuses_a_folder_it_did_not_make(tmp_path):
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="not a lifecycle sandbox"):
        init_sandbox(folder, str(tmp_path / "remote"), echo=False)
    assert (folder / "notes.txt").read_text() == "keep me"


@pytest.mark.slow
def test_full_cycle_restores_v1_from_cache_and_from_remote(tmp_path):
    kit = _git_repo(tmp_path / "kit")  # the sandbox lives inside another repository, as in the kit
    remote = tmp_path / "remote"
    repo = init_sandbox(kit / "workspace" / "data-repo", str(remote), echo=False)
    assert repo.git("rev-parse", "--show-toplevel").stdout == str(repo.path)

    write_transactions(generate_transactions(2_000, seed=3, start="2026-01-01"), repo.data_file)
    v1_bytes = repo.data_file.read_bytes()
    v1 = file_md5(repo.data_file)
    track_data(repo)
    assert v1 in (repo.path / f"{DATA_FILE}.dvc").read_text()
    commit_version(repo, "data-v1", "v1")
    assert push_data(repo).stdout == "1 file pushed"
    v2 = version_data(repo, generate_transactions(2_000, seed=3, start="2026-02-01"), "data-v2", "v2")
    assert v1 != v2
    assert repo.git("tag").stdout.split() == ["data-v1", "data-v2"]
    assert repo.git("ls-files").stdout.split() == [".dvc/.gitignore", ".dvc/config", ".dvcignore",
                                                   "data/.gitignore", f"{DATA_FILE}.dvc"]

    changes = diff_versions(repo, "data-v1", "data-v2")
    assert changes["modified"] == [{"path": DATA_FILE, "hash": {"old": v1, "new": v2}}]

    assert restore_version(repo, "data-v1") == v1
    assert repo.data_file.read_bytes() == v1_bytes
    clear_cache(repo)
    assert not repo.data_file.exists() and not (repo.path / ".dvc" / "cache").exists()
    assert pull_data(repo) == v1
    assert restore_version(repo, "HEAD", pull=True) == v2
    assert repo.git("status", "--short").stdout == ""
    assert "dvc pull" in repo.transcript().splitlines()
    assert run_command(["git", "rev-list", "--all"], kit).stdout == ""  # the kit's history is untouched

    again = init_sandbox(repo.path, str(remote), echo=False)  # a second run starts fresh
    assert again.git("tag").stdout == ""
    assert not again.data_file.exists()


@pytest.mark.slow
def test_ensure_sandbox_reuses_a_matching_sandbox_and_rebuilds_for_other_data(tmp_path):
    settings = load_settings(workspace=tmp_path / "workspace")
    first = ensure_sandbox(settings, rows=1_000, seed=1)
    head = first.git("rev-parse", "HEAD").stdout
    assert first.git("tag").stdout.split() == ["data-v1", "data-v2"]
    assert first.git("status", "--short").stdout == ""
    assert Path(settings.dvc_remote_url).is_dir()  # pushed to the settings' default remote

    reused = ensure_sandbox(settings, rows=1_000, seed=1)
    assert reused.git("rev-parse", "HEAD").stdout == head

    rebuilt = ensure_sandbox(settings, rows=1_000, seed=2)
    assert rebuilt.git("rev-parse", "HEAD").stdout != head
    v1_pointer = rebuilt.git("show", f"data-v1:{DATA_FILE}.dvc").stdout
    expected = write_transactions(generate_transactions(1_000, seed=2, start="2026-01-01"), tmp_path / "v1.csv")
    assert file_md5(expected) in v1_pointer


def test_without_lesson_01_the_data_is_generated_and_the_lineage_and_the_note_say_so(tmp_path, capsys):
    settings = load_settings(workspace=tmp_path / "workspace")
    frame, lineage = read_data_version(settings, "data-v2", rows=500, seed=4)
    expected = version_frame("data-v2", 500, 4)
    pd.testing.assert_frame_equal(frame, expected, check_exact=True)  # the same table, the same dtypes
    assert (lineage.source, lineage.tag, lineage.rev) == ("generated", None, None)
    assert lineage.data_md5 == file_md5(write_transactions(expected, tmp_path / "expected.csv"))
    assert lineage.mlflow_tags() == {"data.source": "generated", "data.md5": lineage.data_md5, "data.path": DATA_FILE,
                                     "data.generator": "version_frame('data-v2', rows=500, seed=4)"}
    note = capsys.readouterr().out
    assert note.startswith("generated data-v2 from the seed: lesson 01's data repository is not in the workspace")
    with pytest.raises(ConfigError, match=r"unknown data version 'data-v3'; the versions are \['data-v1', 'data-v2'\]"):
        read_data_version(settings, "data-v3")


@pytest.mark.slow
def test_with_lesson_01_the_data_is_read_from_dvc_at_its_tag_with_its_lineage(tmp_path, capsys):
    settings = load_settings(workspace=tmp_path / "workspace")
    repo = ensure_sandbox(settings, rows=1_000, seed=1)  # as lesson 01 leaves it: data-v2 in the working copy
    _check_the_lineage_of_the_working_copy(repo, tmp_path)
    capsys.readouterr()
    frame, lineage = read_data_version(settings, "data-v1", rows=1_000, seed=1)
    pd.testing.assert_frame_equal(frame, version_frame("data-v1", 1_000, 1), check_exact=True)
    pointer = repo.git("show", f"data-v1:{DATA_FILE}.dvc").stdout + "\n"
    assert (lineage.source, lineage.tag, lineage.path) == ("dvc", "data-v1", DATA_FILE)
    assert lineage.rev == repo.git("rev-list", "-n", "1", "data-v1").stdout
    assert lineage.dvc_file_md5 == hashlib.md5(pointer.encode()).hexdigest() and lineage.data_md5 in pointer
    assert lineage.remote == settings.dvc_remote_url
    assert capsys.readouterr().out.startswith(f"read {DATA_FILE} at data-v1 (commit {lineage.rev[:8]}), tracked by DVC")

    clear_cache(repo)  # a fresh clone's state: dvc.api reads the bytes from the remote
    assert read_data_version(settings, "data-v1", rows=1_000, seed=1, echo=False)[1] == lineage

    _, other = read_data_version(settings, "data-v1", rows=1_000, seed=2)  # lesson 01 ran with another seed
    assert other.source == "generated"
    assert "lesson 01's data-v1 holds other data than rows=1000, seed=2" in capsys.readouterr().out


def _check_the_lineage_of_the_working_copy(repo, tmp_path):
    """Without a revision, the lineage is the working copy's pointer: the tag holding it, the last commit."""
    head = data_lineage(repo.path, DATA_FILE)
    assert (head.tag, head.rev) == ("data-v2", repo.git("rev-parse", "HEAD").stdout)
    repo.git("commit", "--quiet", "--allow-empty", "-m", "later work")  # the pointer did not change since
    assert data_lineage(repo.path, DATA_FILE) == head
    (repo.path / f"{DATA_FILE}.dvc").write_text(repo.git("show", f"data-v1:{DATA_FILE}.dvc").stdout + "\n")
    edited = data_lineage(repo.path, DATA_FILE)  # an uncommitted pointer: no commit or tag holds it yet
    assert (edited.tag, edited.rev, edited.source) == (None, None, "dvc")
    repo.git("checkout", "--", f"{DATA_FILE}.dvc")
    assert data_lineage(tmp_path, DATA_FILE) is None and data_lineage(repo.path, DATA_FILE, rev="no-such") is None
