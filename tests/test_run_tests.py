"""scripts/run_tests.py and conftest's --half: `make test` runs pytest processes side by side. Together they must run
exactly the default tier (no test in both, none in neither), a failure in any fails the whole, and a kill stops
them all."""
from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "run_tests.py"
# Two modules with tests on both sides of the split (fixture-free measures, verify tests on the fast models).
SAMPLE = ["tests/test_verify.py", "tests/test_measures.py"]


def _collected(*args: str) -> set[str]:
    r = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *args,
                        *SAMPLE], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    return {line for line in r.stdout.splitlines() if "::" in line}


def test_the_two_halves_partition_the_default_tier():
    whole = _collected()
    fast, independent = _collected("--half=fast-models"), _collected("--half=independent")
    assert fast and independent, "each half of the sample should hold tests"
    assert not fast & independent, f"in both halves: {sorted(fast & independent)[:5]}"
    assert fast | independent == whole, f"in neither half: {sorted(whole - fast - independent)[:5]}"
    # the side-by-side test compares the fixture's in-memory verdicts: it needs the half that builds them
    assert any("test_verifying_side_by_side_gives_the_verdicts_of_one_at_a_time" in t for t in fast)
    assert {t for t in whole if "test_measures.py" in t} <= independent  # they use no session fixture


def _load_runner():
    spec = importlib.util.spec_from_file_location("run_tests_under_test", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_late_modules_exist_and_never_need_the_fixtures_in_memory():
    """The late process reads the fast models back from disk: a module that compares the fixtures in memory with
    their files (skip_self_comparison / loaded_from_disk) must stay in the fast-models process."""
    runner = _load_runner()
    for module in runner.LATE:
        text = (REPO / module).read_text()
        assert "skip_self_comparison" not in text and "loaded_from_disk" not in text, module


def _fake(codes: dict[str, int], publish: bool):
    def command(name, basetemp, shared):
        publishing = (f"import pathlib; pathlib.Path({str(shared / 'ready')!r}).write_text('snapshot'); "
                      if publish and name == "fast-models" else "")
        return [sys.executable, "-c", f"{publishing}print('{name} ran in', {str(basetemp)!r}); "
                                      f"raise SystemExit({codes[name]})"], {}
    return command


def test_a_failing_process_fails_the_whole_and_every_output_is_shown(monkeypatch, tmp_path, capfd):
    runner = _load_runner()
    monkeypatch.setattr(runner, "LOGS", tmp_path)
    codes = {"fast-models": 0, "independent": 3, "late": 0}
    monkeypatch.setattr(runner, "_command", _fake(codes, publish=True))
    assert runner.run_all() == 1
    out = capfd.readouterr().out
    assert all(f"{name} ran in" in out for name in codes)  # the other two logs are printed
    assert "fast-models passed; independent FAILED (exit status 3); late passed" in out
    codes["independent"] = 0
    assert runner.run_all() == 0
    # a fast-models process that ends without publishing its models: the late tests cannot run, and that fails
    monkeypatch.setattr(runner, "_command", _fake(codes, publish=False))
    assert runner.run_all() == 1
    out = capfd.readouterr().out
    assert "not run: the fast-models process ended before it published its fast models" in out
    assert "late FAILED (exit status 1)" in out


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").exists() and Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def test_a_kill_stops_both_halves(tmp_path):
    sleeper = ("import os, pathlib, sys, time; "
               f"pathlib.Path({str(tmp_path)!r}, sys.argv[1] + '.pid').write_text(str(os.getpid())); time.sleep(600)")
    code = (f"import importlib.util, pathlib, sys\n"
            f"spec = importlib.util.spec_from_file_location('rt', {str(SCRIPT)!r})\n"
            f"rt = importlib.util.module_from_spec(spec); spec.loader.exec_module(rt)\n"
            f"rt.LOGS = pathlib.Path({str(tmp_path)!r})\n"
            f"rt._command = lambda name, base, shared: ([sys.executable, '-c', {sleeper!r}, name], {{}})\n"
            f"sys.exit(rt.main([]))\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    pids = [tmp_path / "fast-models.pid", tmp_path / "independent.pid"]
    deadline = time.monotonic() + 60
    while not all(p.exists() and p.read_text() for p in pids):
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            pytest.fail(f"the halves did not start: {proc.communicate()}")
        time.sleep(0.1)
    children = [int(p.read_text()) for p in pids]
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (out, err)
    assert "every test process was stopped" in err
    time.sleep(0.5)
    assert not [pid for pid in children if _alive(pid)], "a half outlived the kill"
