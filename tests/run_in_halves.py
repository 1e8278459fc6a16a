"""`make test`: the whole suite as two pytest runs side by side, one per core.

Run one after the other, the suite kept about one of a 2-core machine's cores busy (user + system time
≈ 1.1 × wall time): the notebooks wait on kernels and servers, the library's tests on subprocesses. Side by
side they take the time of the longer half. The halves split by path, so each pytest session keeps its
own session fixtures: the smoke course runs once, in the notebooks half, which also runs the grading
tests (they execute the exercise notebooks) to even out the halves.

The notebooks half reports as it goes; the library half's report goes to ``build/test-library.log`` and
is printed when it ends. The exit status is 0 only when both pass. Ctrl-C stops both.

    python tests/run_in_halves.py [pytest options for both halves]
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NBVAL = ["--nbval-lax", "--nbval-cell-timeout=300", "--nbval-sanitize-with", "tests/notebooks/sanitize.cfg"]
HALVES = {
    "notebooks": ["notebooks", "tests/notebooks", "tests/unit/test_grade.py"],
    "library": ["tests/unit", "tests/browser", "exercises", "--ignore=tests/unit/test_grade.py"],
}


def main(options: list[str]) -> int:
    log = ROOT / "build" / "test-library.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    pytest = [sys.executable, "-m", "pytest", *NBVAL, "--durations=10", *options]
    clock = time.monotonic()
    seconds: dict[str, float] = {}
    with open(log, "w") as output:
        library = subprocess.Popen([*pytest, *HALVES["library"]], cwd=ROOT, stdout=output, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL)
        try:
            notebooks = subprocess.run([*pytest, *HALVES["notebooks"]], cwd=ROOT, stdin=subprocess.DEVNULL)
            seconds["notebooks"] = time.monotonic() - clock
            library.wait()
            seconds["library"] = time.monotonic() - clock
        except KeyboardInterrupt:
            library.terminate()
            library.wait()
            return 130
    print(f"\n==== the library half ({log.relative_to(ROOT)}) ====", flush=True)
    print(log.read_text(), end="", flush=True)
    status = {"notebooks": notebooks.returncode, "library": library.returncode}
    print("\n==== make test: " + "; ".join(f"{name} half {'passed' if code == 0 else f'FAILED (exit {code})'} "
                                          f"in {seconds[name]:.0f} s" for name, code in status.items()) + " ====")
    return 0 if not any(status.values()) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
