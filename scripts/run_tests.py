"""`make test`: the default test tier as pytest processes side by side, so the 2-core CI machine is not half idle.

- fast-models: the tests that use the session's fast models (`--half fast-models`). It trains, converts and
  verifies the ten fast models once (about 20 minutes, both cores busy only part of the time), publishes a
  snapshot of them, then runs its tests; every test that compares the fixtures in memory with their files
  (test_convert, test_verify) runs here. It streams to this terminal.
- independent: every test that does not use the fast models (`--half independent`: the model corpus, the CLI,
  the wheel, hostile inputs, the aarch64 userland, ...), from the start, beside the first.
- late: once the independent tests are done and the snapshot is ready, the fast-models tests of the LATE
  modules (the browser demo, the runtime, deploy) run on the snapshot (EDGEPROOF_TEST_REUSE_TRAINED), beside
  the rest of the first process. A self-comparison skip there is a failure (EDGEPROOF_TEST_REUSE_MUST_NOT_SKIP).

Each process has its own pytest temp folder; the second and third write test-output/tests-<name>.log, printed
when everything ends. The exit status is 0 only when all pass. Ctrl-C or a kill stops them all.

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
from typing import IO, Optional

REPO = Path(__file__).resolve().parents[1]
LOGS = REPO / "test-output"
LATE = ("tests/test_web_demo.py", "tests/test_web_demo_runtimes.py", "tests/test_web_selftest.py",
        "tests/test_runtime.py", "tests/test_deploy.py", "tests/test_browser_runtime.py")
PUBLISH_ENV = "EDGEPROOF_TEST_PUBLISH_FAST_MODELS"  # tests/conftest.py
REUSE_ENV = "EDGEPROOF_TEST_REUSE_TRAINED"
NO_SELF_SKIP_ENV = "EDGEPROOF_TEST_REUSE_MUST_NOT_SKIP"


def _command(name: str, basetemp: Path, shared: Path) -> tuple[list[str], dict[str, str]]:
    """(argv, extra environment) of one process."""
    pytest = [sys.executable, "-m", "pytest", f"--basetemp={basetemp}"]
    if name == "fast-models":
        return pytest + ["--half=fast-models"] + [f"--ignore={m}" for m in LATE], {PUBLISH_ENV: str(shared)}
    if name == "independent":
        return pytest + ["--half=independent"], {}
    snapshot = (shared / "ready").read_text().strip()
    return pytest + ["--half=fast-models", *LATE], {REUSE_ENV: snapshot, NO_SELF_SKIP_ENV: "1"}


def _start(name: str, tmp: Path, log: Optional[IO]) -> subprocess.Popen:
    argv, extra = _command(name, tmp / name, tmp / "shared")
    return subprocess.Popen(argv, cwd=REPO, env={**os.environ, **extra}, stdout=log,
                            stderr=subprocess.STDOUT if log else None)


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


def _wait_for_snapshot(shared: Path, builder: subprocess.Popen) -> bool:
    """True once the fast-models process published its snapshot; False if it ended without one."""
    while not (shared / "ready").exists():
        if builder.poll() is not None:
            return (shared / "ready").exists()
        time.sleep(2)
    return True


def run_all() -> int:
    LOGS.mkdir(exist_ok=True)
    start, codes, procs = time.monotonic(), {}, []
    with tempfile.TemporaryDirectory(prefix="edgeproof-tests-") as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "shared").mkdir()
        logs = {name: open(LOGS / f"tests-{name}.log", "w", encoding="utf-8") for name in ("independent", "late")}
        print("make test: the fast-models and the independent tests at once, then the late ones on the published "
              "fast models; logs in test-output/tests-*.log (printed at the end)", flush=True)
        try:
            builder = _start("fast-models", tmp, None)
            procs.append(builder)
            procs.append(_start("independent", tmp, logs["independent"]))
            codes["independent"] = procs[1].wait()
            if _wait_for_snapshot(tmp / "shared", builder):
                procs.append(_start("late", tmp, logs["late"]))
                codes["late"] = procs[2].wait()
            else:
                logs["late"].write("not run: the fast-models process ended before it published its fast models\n")
                codes["late"] = 1
            codes["fast-models"] = builder.wait()
        except BaseException:
            _stop(procs)
            raise
        finally:
            for f in logs.values():
                f.close()
    for name in ("independent", "late"):
        print(f"\n===== the {name} tests (test-output/tests-{name}.log) =====", flush=True)
        sys.stdout.write((LOGS / f"tests-{name}.log").read_text(encoding="utf-8", errors="replace"))
    verdict = lambda rc: "passed" if rc == 0 else f"FAILED (exit status {rc})"  # noqa: E731
    print("\nmake test: " + "; ".join(f"{name} {verdict(codes[name])}" for name in ("fast-models", "independent",
                                                                                   "late"))
          + f"; {time.monotonic() - start:.0f} s in all", flush=True)
    return 0 if not any(codes.values()) else 1


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt  # a kill stops every process, as Ctrl-C does


def main(argv: list[str]) -> int:
    if argv:
        return subprocess.call([sys.executable, "-m", "pytest", *argv], cwd=REPO)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        return run_all()
    except KeyboardInterrupt:
        print("make test: stopped; every test process was stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
