"""Running external commands (git, dvc, mlflow): found beside this Python, run with a clean environment.

Shared by the stages that drive command-line tools: :mod:`lifecycle.versioning` (git and DVC) and
:mod:`lifecycle.pipeline.dvc` (``dvc repro``) run them; :mod:`lifecycle.tracking.server` finds ``mlflow``
(servers run as managed processes, :mod:`lifecycle._proc`).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from lifecycle.errors import CommandError

COMMAND_TIMEOUT = 600


@dataclass(frozen=True)
class CommandRun:
    """One command that ran: as a shell line, what it printed, and how many seconds it took."""

    shell: str
    stdout: str
    seconds: float
    stderr: str = ""

    @property
    def output(self) -> str:
        return "\n".join(text for text in (self.stdout, self.stderr) if text)

    def __str__(self) -> str:
        return f"$ {self.shell}\n{self.output}".rstrip()


def find_command(name: str) -> str | None:
    """The path of a command installed beside this Python (the kit's ``.venv/bin``), else on PATH.

    A kernel started from the venv's Python does not have ``.venv/bin`` on its PATH, yet the
    ``dvc`` that matters is the one installed with the kit.
    """
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.is_file() else shutil.which(name)


def run_command(argv: list[str], cwd: Path, shown: str = "", hint: str = "") -> CommandRun:
    """Run ``argv`` in ``cwd``, with git unable to find a repository above ``cwd`` and DVC analytics off.

    ``shown`` is the shell line to print (default ``argv``); ``hint`` what to try if it fails.

    Raises:
        CommandError: the program is missing, timed out, or exited with a non-zero status.
    """
    shown = shown or shlex.join(argv)
    # GIT_* variables set by a caller (a git hook, CI) would point git at another repository; the
    # colour variables a Jupyter kernel sets would make DVC draw spinners into the captured output.
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("GIT_") and k not in ("FORCE_COLOR", "CLICOLOR_FORCE", "CLICOLOR")}
    env.update(GIT_CEILING_DIRECTORIES=str(Path(cwd).resolve().parent), GIT_TERMINAL_PROMPT="0",
               DVC_NO_ANALYTICS="1")
    clock = time.perf_counter()
    try:
        done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=COMMAND_TIMEOUT, check=False)
    except FileNotFoundError as err:
        raise CommandError(f"cannot run `{shown}`: {argv[0]} is not installed; install git "
                           "(e.g. apt install git), and run 'make setup' for dvc", argv) from err
    except subprocess.TimeoutExpired as err:
        raise CommandError(f"`{shown}` did not finish within {COMMAND_TIMEOUT} s in {cwd}; "
                           f"hint: {hint or 'check that the remote is reachable'}", argv) from err
    ran = CommandRun(shown, done.stdout.rstrip(), round(time.perf_counter() - clock, 2), done.stderr.rstrip())
    if done.returncode != 0:
        tail = "\n".join(ran.output.splitlines()[-12:])
        raise CommandError(f"`{shown}` failed with exit code {done.returncode} in {cwd}:\n{tail}\n"
                           f"hint: {hint or 'run the same command in that folder to see more'}",
                           argv, done.returncode, ran.output)
    return ran
