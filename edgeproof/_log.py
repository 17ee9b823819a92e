"""What edgeproof prints, and where the rest goes. Three levels:

- SUMMARY (the pipeline, the main job): a progress bar per stage (on a terminal) and a line per model;
- PROGRESS (every other command): edgeproof's own progress lines, one per model and artifact;
- VERBOSE (`-v`): also the underlying tools' logs (TensorFlow/absl, Keras epochs, torch.onnx, onnx2tf).

Quiet happens at the source: TensorFlow's C++ logging is set by environment before TensorFlow is imported
(TF_CPP_MIN_LOG_LEVEL), Keras trains with verbose=0, the tools' console output is redirected; Python errors
are never hidden. Every run also writes its full log, the tools' output included, to artifacts/logs/.
"""
from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import threading
import time
from pathlib import Path
from typing import Iterator, Optional, TextIO

SUMMARY, PROGRESS, VERBOSE = 0, 1, 2
_state = {"level": PROGRESS, "file": None, "console": None}
_lock = threading.Lock()


def level() -> int:
    return _state["level"]


def quiet_environment(verbose: bool) -> None:
    """Set before TensorFlow is imported (here and in every worker process, which inherit it)."""
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0" if verbose else "3"
    os.environ.setdefault("TFDF_DISABLE_WELCOME_MESSAGE", "1")
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    os.environ["EDGEPROOF_LOG_LEVEL"] = str(VERBOSE if verbose else _state["level"])


def _write(text: str, console: bool) -> None:
    with _lock:
        if _state["file"] is not None:
            _state["file"].write(text + "\n")
            _state["file"].flush()
        if console:
            stream = _state["console"] or sys.stdout
            stream.write(text + "\n")
            stream.flush()


def info(*parts, **_) -> None:
    """A line everyone sees (stage summaries, results)."""
    _write(" ".join(str(p) for p in parts), True)


def detail(*parts, **_) -> None:
    """A progress line: shown by commands, kept in the log by the pipeline."""
    _write(" ".join(str(p) for p in parts), _state["level"] >= PROGRESS)


class _Tee(io.TextIOBase):
    """A text stream into the log file (and the console when verbose): what tools print."""

    def write(self, text: str) -> int:
        with _lock:
            if _state["file"] is not None:
                _state["file"].write(text)
            if _state["level"] >= VERBOSE:
                (_state["console"] or sys.__stdout__).write(text)
        return len(text)

    def flush(self) -> None:
        if _state["file"] is not None:
            _state["file"].flush()


@contextlib.contextmanager
def tool_output(*loggers: str) -> Iterator[None]:
    """Python-level prints of a tool (torch.onnx, Keras) go to the log, and to the console only when verbose;
    the tool's own `loggers` (e.g. "torch.onnx") keep their warnings for the log too."""
    if _state["level"] >= VERBOSE and _state["file"] is None:
        yield
        return
    saved = []
    for name in loggers:
        logger = logging.getLogger(name)
        saved.append((logger, logger.propagate, list(logger.handlers), logger.level))
        logger.handlers, logger.propagate = [logging.StreamHandler(_Tee())], False
        logger.setLevel(logging.DEBUG if _state["level"] >= VERBOSE else logging.WARNING)
    try:
        with contextlib.redirect_stdout(_Tee()):
            yield
    finally:
        for logger, propagate, handlers, old_level in saved:
            logger.handlers, logger.propagate = handlers, propagate
            logger.setLevel(old_level)


def _capture_fd(fd: int, log: TextIO) -> None:
    """Everything written to file descriptor `fd` (C++ logs, child processes) goes to the log file."""
    read, write = os.pipe()
    os.dup2(write, fd)
    os.close(write)

    def pump() -> None:
        with os.fdopen(read, "rb") as pipe:
            for line in pipe:
                text = line.decode("utf-8", "replace")
                with _lock:
                    try:
                        log.write(text)
                        log.flush()
                        if _state["level"] >= VERBOSE:
                            sys.__stderr__.write(text)
                    except (ValueError, OSError):  # the log closed as the process exits: nothing left to keep
                        return

    threading.Thread(target=pump, daemon=True).start()


def setup(artifacts: Optional[str], command: str, verbose: bool, summary: bool = False,
          stderr: bool = False) -> Optional[Path]:
    """Choose the level and open artifacts/logs/<time>-<command>.log; C++ and child-process output on stderr
    goes there too (on the console as well with -v). `stderr`: progress lines go to stderr (--json output
    owns stdout)."""
    _state["level"] = VERBOSE if verbose else (SUMMARY if summary else PROGRESS)
    _state["console"] = sys.stderr if stderr else None
    quiet_environment(verbose)
    logging.captureWarnings(True)
    if artifacts is None:
        return None
    folder = Path(artifacts) / "logs"
    _state["created"] = [p for p in (Path(artifacts), folder) if not p.exists()]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{time.strftime('%Y%m%d-%H%M%S')}-{command}.log"
    log = open(path, "a", encoding="utf-8")  # noqa: SIM115 - open for the whole run
    _state["file"], _state["path"] = log, path
    warnings_log = logging.getLogger("py.warnings")
    warnings_log.addHandler(logging.StreamHandler(_Tee()))
    warnings_log.propagate = False  # Python warnings belong in the log, not on the console
    try:
        sys.stderr.fileno()
        is_real = sys.stderr is sys.__stderr__
    except (AttributeError, io.UnsupportedOperation):
        is_real = False
    if is_real:  # not under a test runner that captures streams: C++ logs go to the file
        sys.stderr.flush()
        errors = os.fdopen(os.dup(2), "w", buffering=1)
        _capture_fd(2, log)
        sys.stderr = errors  # Python's own error lines (edgeproof: error: ...) still reach the console
    return path


def close(discard: bool = False) -> None:
    """End of a command: the log file closed (the level stays for the process). `discard`: the command was
    refused on its input, so it leaves nothing behind, not even its log (nor the folders made for it)."""
    with _lock:
        if _state["file"] is not None:
            _state["file"].close()
            _state["file"] = None
            if discard:
                _state["path"].unlink(missing_ok=True)
                for folder in reversed(_state.get("created", [])):
                    if folder.is_dir() and not any(folder.iterdir()):
                        folder.rmdir()


def progress_bar(total: int, description: str):
    """A progress bar with counts and ETA for a stage of the pipeline, on a terminal at the summary level;
    a no-op elsewhere (CI logs get the per-model lines instead)."""
    from tqdm import tqdm

    stream = _state["console"] or sys.stdout
    show = _state["level"] == SUMMARY and hasattr(stream, "isatty") and stream.isatty()
    return tqdm(total=total, desc=description, unit="model", disable=not show, file=stream, leave=False)
