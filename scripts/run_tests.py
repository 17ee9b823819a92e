"""`make test`: the default test tier as two pytest processes at once, so the 2-core CI machine is not half idle.

One process runs the tests that use the session's fast models (`--half fast-models`: it trains, converts and
verifies the ten fast models once, about 20 minutes that keep both cores busy only part of the time, then runs
the tests on them); the other runs every other test (`--half independent`: the model corpus, the CLI, the wheel,
hostile inputs, the aarch64 userland, ...) beside it. Each has its own pytest temp folder. The first streams
to this terminal; the second writes test-output/tests-independent.log, which is printed when it ends. The exit
status is 0 only when both pass. Ctrl-C or a kill stops both.

With arguments (`make test PYTEST_ARGS="tests/test_cli.py -k pipeline"`) it runs one pytest with them instead.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LOG = REPO / "test-output" / "tests-independent.log"


def _command(half: str, basetemp: Path) -> list[str]:
    return [sys.executable, "-m", "pytest", f"--half={half}", f"--basetemp={basetemp}"]


def _stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGINT)  # pytest ends its session (fixtures' cleanup) on SIGINT
    deadline = time.monotonic() + 30
    for p in procs:
        try:
            p.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()


def run_halves() -> int:
    LOG.parent.mkdir(exist_ok=True)
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="edgeproof-tests-") as tmp, open(LOG, "w", encoding="utf-8") as log:
        print(f"make test: two halves at once; the independent half writes {os.path.relpath(LOG, REPO)} "
              f"(printed when it ends)", flush=True)
        other = subprocess.Popen(_command("independent", Path(tmp) / "independent"), cwd=REPO,
                                 stdout=log, stderr=subprocess.STDOUT)
        main = subprocess.Popen(_command("fast-models", Path(tmp) / "fast-models"), cwd=REPO)
        procs = [main, other]
        try:
            rc_main = main.wait()
            ended = time.monotonic() - start
            if other.poll() is None:
                print(f"\nmake test: the fast-models half ended ({ended:.0f} s); waiting for the independent half",
                      flush=True)
            rc_other = other.wait()
        except BaseException:
            _stop(procs)
            raise
    print(f"\n===== the independent half ({os.path.relpath(LOG, REPO)}) =====", flush=True)
    sys.stdout.write(LOG.read_text(encoding="utf-8", errors="replace"))
    verdict = lambda rc: "passed" if rc == 0 else f"FAILED (pytest exit status {rc})"  # noqa: E731
    print(f"\nmake test: fast-models half {verdict(rc_main)}; independent half {verdict(rc_other)}; "
          f"{time.monotonic() - start:.0f} s in all", flush=True)
    return 0 if rc_main == 0 and rc_other == 0 else 1


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt  # a kill stops both halves, as Ctrl-C does


def main(argv: list[str]) -> int:
    if argv:
        return subprocess.call([sys.executable, "-m", "pytest", *argv], cwd=REPO)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        return run_halves()
    except KeyboardInterrupt:
        print("make test: stopped; both halves were stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
