"""The run log's capture of a file descriptor (C++ logs, child processes): lines reach the log file, and output
that arrives after the log was closed (as the process exits) ends the pump quietly instead of printing a
traceback from its thread."""
from __future__ import annotations

import os
import threading
import time

from edgeproof import _log


def test_the_fd_pump_writes_lines_then_stops_quietly_once_the_log_is_closed(tmp_path):
    errors = []
    hook, threading.excepthook = threading.excepthook, lambda args: errors.append(args.exc_value)
    fd = os.open(os.devnull, os.O_WRONLY)
    log = open(tmp_path / "run.log", "a", encoding="utf-8")
    try:
        _log._capture_fd(fd, log)
        os.write(fd, b"first line\n")
        deadline = time.time() + 5
        while "first line" not in (tmp_path / "run.log").read_text() and time.time() < deadline:
            time.sleep(0.02)
        assert (tmp_path / "run.log").read_text() == "first line\n"
        log.close()
        os.write(fd, b"after the log closed\n")
        os.close(fd)  # the pipe's last writer: the pump's loop ends
        time.sleep(0.5)
    finally:
        threading.excepthook = hook
    assert errors == []
