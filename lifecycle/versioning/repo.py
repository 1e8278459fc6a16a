"""The sandbox repository and the git and DVC commands a learner types in it.

Every helper runs the real ``git`` or ``dvc`` command, prints it as a shell line
(``$ dvc add data/transactions.csv``) with its output, and keeps it in the repository's
``history``, so a notebook shows exactly what a learner would type. A failing command raises
:class:`~lifecycle.errors.CommandError` with the command, its exit code, its output and a hint.

The sandbox is a git repository of its own (``git init`` inside it, and git is never allowed to
look above it), so nothing here touches the kit's own history.

Taught in notebooks/01_data_versioning.ipynb.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import stat
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from lifecycle._shell import CommandRun, find_command, run_command
from lifecycle.data import write_transactions
from lifecycle.errors import ConfigError
from lifecycle.versioning.remote import (
    ENDPOINT_ENV,
    REMOTE_NAME,
    check_remote,
    relative_to,
    remote_endpoint,
    resolve_remote_url,
)

if TYPE_CHECKING:
    import pandas as pd

DATA_FILE = "data/transactions.csv"
SANDBOX_NAME = "data-repo"
# Local to the sandbox: a learner's global git settings (signing, identity) must not matter.
GIT_CONFIG = {"user.name": "ML Lifecycle Lab", "user.email": "lab@lifecycle.invalid",
              "commit.gpgsign": "false", "tag.gpgsign": "false"}
MARKER = "lifecycle-sandbox"  # written inside .git/ by init_sandbox: only such folders are ever deleted


class DataRepo:
    """A git + DVC sandbox repository: runs commands in it, prints and remembers them.

    Args:
        path: the repository's folder (holding ``.git``; see :func:`init_sandbox`).
        remote_url: the DVC default remote, named in hints.
        echo: print each command and its output as it runs.

    Raises:
        ConfigError: ``path`` is not a git repository of its own.
    """

    def __init__(self, path: str | Path, remote_url: str = "", echo: bool = True) -> None:
        self.path = Path(path).resolve()
        if not (self.path / ".git").is_dir():
            raise ConfigError(f"{self.path} is not a git repository of its own (no .git folder); "
                              "create the sandbox with init_sandbox(path, remote_url)")
        self.remote_url = remote_url
        self.echo = echo
        self.history: list[CommandRun] = []

    @property
    def data_file(self) -> Path:
        return self.path / DATA_FILE

    def git(self, *args: str, hint: str = "") -> CommandRun:
        """Run ``git ARGS`` in the sandbox."""
        return self.note(run_command([_git(), *args], self.path, shlex.join(["git", *args]), hint))

    def dvc(self, *args: str, hint: str = "", shown: str = "") -> CommandRun:
        """Run ``dvc ARGS`` in the sandbox with the DVC installed beside this Python; ``shown`` is the shell
        line to print instead of ``dvc ARGS`` (one naming an environment variable rather than its value)."""
        dvc = find_command("dvc")
        argv = [dvc] if dvc else [sys.executable, "-m", "dvc"]
        hint = hint or f"run 'make setup' if dvc is missing, else run the command in {self.path} for details"
        return self.note(run_command([*argv, *args], self.path, shown or shlex.join(["dvc", *args]), hint))

    def note(self, done: CommandRun) -> CommandRun:
        """Remember (and print) a command: one that ran, or a Python step shown as its shell equivalent."""
        self.history.append(done)
        if self.echo:
            print(done, flush=True)
        return done

    def transcript(self) -> str:
        """Every command so far, as a shell script a learner could paste into a terminal."""
        return "\n".join(run.shell for run in self.history)


def _git() -> str:
    return find_command("git") or "git"


def file_md5(path: str | Path) -> str:
    """The md5 of a file's bytes: what DVC 3 records in the ``.dvc`` pointer of a single file."""
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def init_sandbox(path: str | Path, remote_url: str, echo: bool = True, endpoint: str | None = None) -> DataRepo:
    """Start a fresh git + DVC repository at ``path`` whose default DVC remote is ``remote_url``.

    A sandbox left by an earlier run is deleted first, so every run starts from the same state;
    the remote is kept (it stores files by hash, so pushing the same data again sends nothing).

    Args:
        path: the sandbox folder: missing, empty, or a sandbox made by this function.
        remote_url: a local folder or any URL DVC supports (``s3://…`` needs ``pip install 'dvc[s3]'``).
        echo: print each command as it runs.
        endpoint: an ``s3://`` remote's endpoint (default: ``settings.dvc_remote_endpoint``), recorded
            with ``dvc remote modify … endpointurl``.

    Returns:
        The :class:`DataRepo`, with one commit holding DVC's configuration.

    Raises:
        ConfigError: ``path`` holds something this module did not create; an endpoint for a non-S3 remote.
        CommandError: git or dvc failed.
    """
    path = Path(path).resolve()
    remote_url = resolve_remote_url(remote_url)
    endpoint = remote_endpoint(remote_url, endpoint)
    _remove_old_sandbox(path)
    path.mkdir(parents=True)
    initialised = run_command([_git(), "init", "--quiet", "-b", "main"], path, "git init --quiet -b main",
                              hint="git 2.28 or newer is needed for 'init -b'")
    (path / ".git" / MARKER).write_text("made by lifecycle.versioning.init_sandbox; safe to delete\n")
    repo = DataRepo(path, remote_url, echo)
    repo.note(initialised)
    for key, value in GIT_CONFIG.items():
        repo.git("config", key, value)
    repo.dvc("init", "--quiet")  # without --quiet: a "What's next? … Star us on GitHub" banner
    repo.dvc("config", "core.analytics", "false")
    repo.dvc("remote", "add", "--default", REMOTE_NAME, relative_to(remote_url, path))
    if endpoint:
        # Shown as a learner would type it after `source workspace/services.env` (the port changes at every start).
        from_env = endpoint == os.environ.get(ENDPOINT_ENV, "").rstrip("/")
        repo.dvc("remote", "modify", REMOTE_NAME, "endpointurl", endpoint,
                 shown=f"dvc remote modify {REMOTE_NAME} endpointurl ${ENDPOINT_ENV}" if from_env else "")
    repo.git("add", ".dvc", ".dvcignore")
    repo.git("commit", "--quiet", "-m", "Initialize DVC with a default remote")
    return repo



def _remove_old_sandbox(path: Path) -> None:
    if not path.exists():
        return
    if not path.is_dir() or (any(path.iterdir()) and not (path / ".git" / MARKER).is_file()):
        raise ConfigError(f"{path} already holds files that are not a lifecycle sandbox; the sandbox starts "
                          "fresh on every run, so choose an empty or new folder (or move those files)")

    shutil.rmtree(path, onerror=_make_writable)


def _make_writable(function, name, _error) -> None:  # DVC's cache files are read-only (matters on Windows)
    os.chmod(name, stat.S_IWRITE | stat.S_IREAD)
    function(name)


def track_data(repo: DataRepo, relative: str = DATA_FILE) -> CommandRun:
    """``dvc add``: move the file's bytes into the cache and write the small ``.dvc`` pointer git tracks."""
    return repo.dvc("add", relative)


def commit_version(repo: DataRepo, tag: str, message: str, relative: str = DATA_FILE) -> None:
    """Commit the ``.dvc`` pointer (and the ``.gitignore`` keeping the data out of git), and tag it."""
    pointer = Path(relative)
    repo.git("add", f"{pointer}.dvc", str(pointer.parent / ".gitignore"))
    repo.git("commit", "--quiet", "-m", message)
    repo.git("tag", tag, hint=f"tags are unique: list them with 'git tag' and choose a new name for {tag!r}")


def push_data(repo: DataRepo) -> CommandRun:
    """``dvc push``: copy the cached data the default remote does not hold yet.

    Raises:
        CommandError: ``dvc push`` failed, or an ``s3://`` remote's store does not answer.
        ConfigError: an ``s3://`` remote's store refuses the credentials or has no such bucket.
    """
    check_remote(repo.path)
    return repo.dvc("push", hint=f"check that the remote {repo.remote_url} exists and is writable "
                                 "(for s3:// install 'dvc[s3]' and set your AWS credentials)")



def version_data(repo: DataRepo, frame: pd.DataFrame, tag: str, message: str) -> str:
    """Write ``frame`` as the data file, then ``dvc add``, commit, tag and ``dvc push`` it.

    Returns:
        The md5 of the data file that was versioned.
    """
    write_transactions(frame, repo.data_file)
    track_data(repo)
    commit_version(repo, tag, message)
    push_data(repo)
    return file_md5(repo.data_file)


def diff_versions(repo: DataRepo, old: str, new: str) -> dict:
    """``dvc diff --json --show-hash OLD NEW``: the tracked files that changed between two revisions."""
    return json.loads(repo.dvc("diff", "--json", "--show-hash", old, new).stdout or "{}")


def restore_version(repo: DataRepo, rev: str, pull: bool = False) -> str:
    """Bring back the data of git revision ``rev`` (``data-v1``, ``HEAD``, a commit); returns its md5.

    The ``.dvc`` pointer is checked out as it was at ``rev``; then ``dvc checkout`` makes the file
    match it from the local cache, or with ``pull=True`` ``dvc pull`` fetches it from the remote.
    """
    repo.git("checkout", rev, "--", f"{DATA_FILE}.dvc")
    if pull:
        return pull_data(repo)
    repo.dvc("checkout", hint="the cache may not hold this version; 'dvc pull' fetches it from the remote")
    return file_md5(repo.data_file)


def clear_cache(repo: DataRepo) -> None:
    """Delete DVC's local cache and the data file, as on a fresh clone or a lost laptop."""
    shutil.rmtree(repo.path / ".dvc" / "cache", ignore_errors=True)
    repo.data_file.unlink(missing_ok=True)
    repo.note(CommandRun(f"rm -rf .dvc/cache {DATA_FILE}", "", 0.0))


def pull_data(repo: DataRepo) -> str:
    """``dvc pull``: fetch the data the ``.dvc`` pointers (and ``dvc.lock``) name from the remote; returns the
    data file's md5.

    Raises:
        CommandError, ConfigError: as :func:`push_data`.
    """
    check_remote(repo.path)
    repo.dvc("pull", hint=f"check that the remote {repo.remote_url} is reachable and holds the data "
                          "(did 'dvc push' run?)")
    return file_md5(repo.data_file)


def clone_sandbox(repo: DataRepo, name: str = f"{SANDBOX_NAME}-clone") -> DataRepo:
    """What a colleague's machine gets: ``git clone`` of the sandbox into a fresh folder ``name`` beside it,
    then ``dvc pull`` of everything its pointers and ``dvc.lock`` name, from the shared remote.

    Raises:
        ConfigError: ``name`` holds files this module did not create.
        CommandError: git or dvc failed (a ``dvc pull`` fails for data nobody pushed).
    """
    target = repo.path.parent / name
    _remove_old_sandbox(target)
    cloned = run_command([_git(), "clone", "--quiet", repo.path.name, name], repo.path.parent,
                         f"git clone --quiet {repo.path.name} {name}")
    (target / ".git" / MARKER).write_text("made by lifecycle.versioning.clone_sandbox; safe to delete\n")
    clone = DataRepo(target, repo.remote_url, repo.echo)
    clone.note(cloned)
    pull_data(clone)
    return clone
