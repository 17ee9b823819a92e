"""Worker processes end with the process that started them. A verify worker (a model's whole verification) or a
converter child (one TFLite conversion) that outlives a killed `edgeproof` goes on using the cores for minutes,
and may write into a folder that a new run is already using. A daemon thread in the worker polls its parent id:
once the parent is gone (killed, crashed; the worker has been re-parented), the worker exits at once. What it was
writing is safe: every file edgeproof writes goes through a temporary file and an atomic rename."""
from __future__ import annotations

import os
import threading
import time

ORPHAN_EXIT = 143  # as if terminated (128 + SIGTERM)
THREAD_NAME = "edgeproof-exit-with-parent"


def exit_with_parent(poll_s: float = 1.0) -> None:
    """Start the watch in this (worker) process; idempotent."""
    if any(t.name == THREAD_NAME for t in threading.enumerate()):
        return
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(poll_s)
            if os.getppid() != parent:
                os._exit(ORPHAN_EXIT)  # noqa: SLF001 (no cleanup to run: the parent that wanted the result is gone)

    threading.Thread(target=watch, name=THREAD_NAME, daemon=True).start()
