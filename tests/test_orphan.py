"""edgeproof._orphan: a worker (verify's process pool, the converter child) ends when the process that started it is
killed, instead of computing on for minutes and writing into a folder a new run may be using."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.parametrize("watch", [True, False], ids=["watched", "unwatched"])
def test_a_worker_ends_when_its_parent_is_killed(tmp_path, watch):
    """The unwatched case shows the test can fail: without the watch the orphan runs on."""
    child = ("import os, pathlib, sys, time\n"
             + ("from edgeproof._orphan import exit_with_parent; exit_with_parent(0.1)\n" if watch else "")
             + f"pathlib.Path({str(tmp_path / 'child.pid')!r}).write_text(str(os.getpid())); time.sleep(60)\n")
    parent = subprocess.Popen([sys.executable, "-c",
                               f"import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', {child!r}]); "
                               f"time.sleep(60)"], cwd=REPO)
    pid_file = tmp_path / "child.pid"
    deadline = time.monotonic() + 60
    while not (pid_file.exists() and pid_file.read_text()):
        assert time.monotonic() < deadline, "the child did not start"
        time.sleep(0.05)
    pid = int(pid_file.read_text())
    parent.send_signal(signal.SIGKILL)
    parent.wait(timeout=10)
    time.sleep(1.5)
    try:
        assert _alive(pid) is not watch, "a watched worker must be gone; an unwatched one still runs"
    finally:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_verify_workers_start_the_watch():
    from edgeproof._orphan import THREAD_NAME

    code = ("import threading, multiprocessing as mp\n"
            "from edgeproof.verify._parallel import _start_worker\n"
            "_start_worker(1, mp.get_context('spawn').Queue())\n"
            f"print(any(t.name == {THREAD_NAME!r} for t in threading.enumerate()))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert r.stdout.strip() == "True", r.stderr[-2000:]


def test_the_converter_child_ends_when_its_parent_is_killed(tmp_path):
    """The real converter worker, held before its first job: its job file is a FIFO this test holds open and never
    writes, so the child blocks reading it (with the FIFO open, hence visible in /proc/PID/fd)."""
    fifo = tmp_path / "jobs.json"
    os.mkfifo(fifo)
    held = os.open(fifo, os.O_RDWR)  # Linux: a FIFO opened read-write does not block, and keeps a writer
    pid_file = tmp_path / "child.pid"
    parent = subprocess.Popen([sys.executable, "-c",
                               "import pathlib, subprocess, sys, time\n"
                               f"c = subprocess.Popen([sys.executable, '-m', 'edgeproof.convert._worker', {str(fifo)!r}])\n"
                               f"pathlib.Path({str(pid_file)!r}).write_text(str(c.pid)); time.sleep(300)\n"], cwd=REPO)
    pid = None
    try:
        deadline = time.monotonic() + 120
        while not (pid_file.exists() and pid_file.read_text()):
            assert time.monotonic() < deadline, "the converter child did not start"
            time.sleep(0.05)
        pid = int(pid_file.read_text())
        while not _reads(pid, fifo):  # the child is in _main, reading its job file, after the watch started
            assert time.monotonic() < deadline and _alive(pid), "the converter child never reached its job file"
            time.sleep(0.1)
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        time.sleep(2.5)  # the watch polls once a second
        assert not _alive(pid), "the converter child outlived its parent"
    finally:
        os.close(held)
        parent.kill()
        if pid is not None and _alive(pid):
            os.kill(pid, signal.SIGKILL)


def _reads(pid: int, path: Path) -> bool:
    try:
        return any(os.path.realpath(p) == str(path) for p in Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return False
