"""Crash-safe folder replacement (edgeproof._atomic): a writer SIGKILLed at a random moment leaves the
old or the new complete folder, hidden leftovers are cleaned by the next run, concurrent writers
never make the folder disappear, and folder_lock serializes them.

Issue 19 item 1: the old `replacing_dir` deleted the target before renaming the new folder in; a
killed deploy left a bundle without manifest.json and hidden `.NAME-xxxx` temp folders, and a reader
saw manifest.json missing thousands of times during two concurrent deploys."""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from edgeproof._atomic import (
    FolderLockedError,
    clean_stale,
    folder_lock,
    replacing_dir,
    visible_children,
)

REPO = Path(__file__).resolve().parents[1]
FILES = 6  # files per generation; a complete folder has all of them, with one generation's content
# Each file is 64 KiB so that writing and deleting a folder takes long enough (about a millisecond)
# for random kills to land inside the write, the swap and the removal of the old folder.
PAYLOAD = 64 * 1024

WRITER = textwrap.dedent(f"""
    import os, sys, time
    from pathlib import Path
    from edgeproof import _atomic as A
    if sys.argv[2] == "fallback":  # the path taken where renameat2(RENAME_EXCHANGE) is unavailable
        A._exchange = lambda a, b: False
    target, tag = Path(sys.argv[1]), sys.argv[3]
    lock = sys.argv[4] == "lock"
    log = Path(sys.argv[5]) if len(sys.argv) > 5 else None
    rounds = int(os.environ.get("ROUNDS", "1000000"))
    for i in range(rounds):
        ctx = A.folder_lock(target) if lock else None
        if ctx: ctx.__enter__()
        if log:
            with open(log, "a") as f: f.write(f"start {{tag}} {{time.monotonic_ns()}}\\n")
        with A.replacing_dir(target) as tmp:
            for k in range({FILES}):
                (tmp / f"f{{k}}").write_bytes(f"{{tag}}-{{i}}".encode().ljust({PAYLOAD}, b"."))
            (tmp / "manifest.json").write_text(f"{{tag}}-{{i}}")
        if log:
            with open(log, "a") as f: f.write(f"end {{tag}} {{time.monotonic_ns()}}\\n")
        if ctx: ctx.__exit__(None, None, None)
""")


def _writer(target: Path, mode: str, tag: str, lock: bool = False, log: Path | None = None,
            rounds: int | None = None) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    if rounds is not None:
        env["ROUNDS"] = str(rounds)
    args = [sys.executable, "-c", WRITER, str(target), mode, tag, "lock" if lock else "nolock"]
    return subprocess.Popen(args + ([str(log)] if log else []), env=env, cwd=REPO)


def _generation(folder: Path) -> str:
    """The folder's one generation tag; fails if any file is missing or from another generation."""
    names = sorted(p.name for p in folder.iterdir())
    assert names == sorted([f"f{k}" for k in range(FILES)] + ["manifest.json"]), names
    tags = {(folder / f"f{k}").read_bytes().rstrip(b".").decode() for k in range(FILES)}
    tags.add((folder / "manifest.json").read_text())
    assert len(tags) == 1, f"mixed generations in {folder}: {tags}"
    return tags.pop()


def _seed(target: Path) -> None:
    with replacing_dir(target) as tmp:
        for k in range(FILES):
            (tmp / f"f{k}").write_bytes(b"seed".ljust(PAYLOAD, b"."))
        (tmp / "manifest.json").write_text("seed")


def _hidden(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith(".") and not p.name.endswith(".lock"))


# 25 kills per path: each lands at a uniformly random moment of a writer that replaces the folder
# continuously, so over the loop kills fall inside writing, swapping and deleting (the test runs in
# about 15 s on 2 cores: each round starts a Python process).
KILLS = 25


@pytest.mark.parametrize("mode", ["exchange", "fallback"])
def test_a_writer_killed_at_any_moment_leaves_a_complete_folder(tmp_path, mode):
    target = tmp_path / "bundles" / "mnist_cnn-keras-int8"
    _seed(target)
    rng = random.Random(19)
    restored = 0
    for _ in range(KILLS):
        proc = _writer(target, mode, "w")
        time.sleep(0.25 + rng.random() * 0.25)  # past the interpreter start-up: inside the write loop
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if mode == "exchange":  # one atomic swap: the folder is complete before anyone cleans up
            _generation(target)
        else:  # between the two renames the old folder sits aside; the next run renames it back
            if not target.exists():
                restored += 1
        done = clean_stale(target.parent)  # what the next run does first
        _generation(target)
        assert _hidden(target.parent) == [], done
        assert visible_children(target.parent, "manifest.json") == [target]
    print(f"{mode}: {KILLS} kills, target restored from its aside copy {restored} times")


def test_a_kill_between_the_two_renames_is_undone_by_the_next_run(tmp_path):
    """The fallback path's only window, set up exactly: the old folder aside, the new one still a
    temp folder, the target missing. The next run restores the old (complete) folder."""
    parent = tmp_path / "deploy"
    old, new = parent / ".b.old-ab12cd34", parent / ".b.new-zz99yy88"
    for folder, tag in ((old, "old"), (new, "new")):
        folder.mkdir(parents=True)
        for k in range(FILES):
            (folder / f"f{k}").write_bytes(tag.encode().ljust(PAYLOAD, b"."))
        (folder / "manifest.json").write_text(tag)
    assert visible_children(parent, "manifest.json") == []  # hidden folders are never listed
    with replacing_dir(parent / "other") as tmp:  # any next run in the same folder
        (tmp / "x").write_text("x")
    assert _generation(parent / "b") == "old"
    assert _hidden(parent) == []


def test_an_error_while_filling_keeps_the_old_folder_and_leaves_nothing(tmp_path):
    target = tmp_path / "b"
    _seed(target)
    with pytest.raises(RuntimeError, match="boom"):
        with replacing_dir(target) as tmp:
            (tmp / "manifest.json").write_text("half")
            raise RuntimeError("boom")
    assert _generation(target) == "seed"
    assert _hidden(tmp_path) == []


def _count_missing(target: Path, stop: threading.Event, seen: dict) -> None:
    while not stop.is_set():
        seen["reads"] += 1
        try:
            if not (target / "manifest.json").read_text():
                seen["empty"] += 1
        except (FileNotFoundError, NotADirectoryError):
            seen["missing"] += 1


def test_concurrent_writers_never_make_the_folder_disappear(tmp_path):
    target = tmp_path / "deploy" / "bundle"
    _seed(target)
    seen = {"reads": 0, "missing": 0, "empty": 0}
    stop = threading.Event()
    reader = threading.Thread(target=_count_missing, args=(target, stop, seen))
    reader.start()
    writers = [_writer(target, "exchange", tag, rounds=60) for tag in ("a", "b")]
    codes = [w.wait(timeout=120) for w in writers]
    stop.set()
    reader.join()
    assert codes == [0, 0]  # neither crashed (the old code crashed when one removed the other's temp folder)
    assert seen["reads"] > 100, seen  # the reader really ran during the writes
    assert seen["missing"] == 0 and seen["empty"] == 0, seen
    assert _generation(target) in {"a-59", "b-59"}
    assert _hidden(target.parent) == []


def test_a_temp_folder_removed_by_its_writer_during_the_cleanup_is_skipped(tmp_path, monkeypatch):
    """The race CI hit: another writer's temp folder is listed, then that writer finishes (its rmtree runs
    outside the parent lock) before the cleanup opens it. The cleanup must skip it, not crash."""
    from edgeproof import _atomic as A

    target = tmp_path / "bundle"
    _seed(target)
    vanishing = tmp_path / ".bundle.new-abcd1234"
    vanishing.mkdir()
    real = A._try_lock

    def gone_first(path):
        if Path(path) == vanishing:
            vanishing.rmdir()  # its writer's rmtree lands between iterdir() and open()
        return real(path)

    monkeypatch.setattr(A, "_try_lock", gone_first)
    assert clean_stale(tmp_path) == []
    with replacing_dir(target) as tmp:
        (tmp / "x").write_text("new")
    assert (target / "x").read_text() == "new"


def test_folder_lock_serializes_writers(tmp_path):
    target = tmp_path / "deploy" / "pi"
    _seed(target)
    log = tmp_path / "log.txt"
    writers = [_writer(target, "exchange", tag, lock=True, log=log, rounds=15) for tag in ("a", "b")]
    assert [w.wait(timeout=120) for w in writers] == [0, 0]
    events = [line.split() for line in log.read_text().splitlines()]
    assert len(events) == 60
    holder = None  # with the lock held, a start is always followed by the same writer's end
    for kind, tag, _ in events:
        if kind == "start":
            assert holder is None, f"{tag} started while {holder} held the lock"
            holder = tag
        else:
            assert holder == tag
            holder = None
    _generation(target)


def test_folder_lock_times_out_with_the_holder_named(tmp_path):
    target = tmp_path / "deploy" / "pi"
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import time
        from edgeproof._atomic import folder_lock
        with folder_lock({str(target)!r}):
            print("locked", flush=True)
            time.sleep(30)
    """)], env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(FolderLockedError, match=rf"locked by another edgeproof process \(pid {holder.pid}\)"):
            with folder_lock(target, timeout_s=0.3):
                pass
    finally:
        holder.kill()
        holder.wait()
    with folder_lock(target, timeout_s=5):  # a killed holder's lock is released by the kernel
        pass


def test_remove_dir_is_atomic_and_its_leftover_is_never_restored(tmp_path):
    """A refused bundle is removed by renaming it aside first: a kill during the deletion leaves a
    hidden `.NAME.del-…` folder, which the next run deletes (an `.old-` one would be restored)."""
    from edgeproof._atomic import remove_dir

    target = tmp_path / "refused-bundle"
    _seed(target)
    remove_dir(target)
    assert not target.exists() and _hidden(tmp_path) == []
    leftover = tmp_path / ".refused-bundle.del-ab12cd34"  # what a kill during rmtree leaves
    leftover.mkdir()
    (leftover / "f0").write_text("half")
    assert clean_stale(tmp_path) == [leftover]
    assert not target.exists() and _hidden(tmp_path) == []
    remove_dir(tmp_path / "never-existed")  # nothing to do
