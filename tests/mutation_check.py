"""Mutation check: break three things on purpose in scratch copies of the checkout and show that the test suite
notices each one (issue 21, "tests that prove what their names say").

    .venv/bin/python tests/mutation_check.py [--reuse FAST_ARTIFACTS] [--keep] [--only NAME ...]

What it does:
1. Copies the checkout's files (`git ls-files --cached --others --exclude-standard`: tracked and new files, no
   ignored ones; read-only git, no worktree) into a scratch folder per run, builds the `edgeproof` package from it
   in place (edgeproof/ gains links to train, convert, verify, runtime and deploy, so that every edgeproof.* module
   resolves inside the copy and never through the checkout's editable install; checked before the tests run) and links
   the checkout's .venv, .venv-edge and web_demo/node_modules.
2. Runs every mutation's tests on the UNMUTATED copy first: they must all pass, or a failure would prove nothing.
3. For each mutation: a fresh copy, one exact text replacement (refused if the text is not found exactly once:
   the code moved, update MUTATIONS), the same tests with PYTHONPATH pointing at the copy. The mutation is caught
   when at least one of them fails; the failing tests are printed.

The stack tests share session fixtures that train, convert and verify the ten fast models (tests/conftest.py).
`--reuse DIR` (default: $EDGEPROOF_TEST_REUSE_TRAINED) points them at a fast-artifacts folder made earlier by those
fixtures, so each run loads it instead of training (tests that re-run code on it, e.g. re-verification or deploy,
still run the mutated code). Without one, the script first makes it in the pristine copy (one full fixture run,
about 40 minutes on 2 busy cores). With a reused folder the whole check takes about 20 minutes (timings printed).

Exit status: 0 when every mutation is caught and the baseline passes, 1 otherwise, 2 for bad arguments.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("train", "convert", "verify", "runtime", "deploy")  # mapped into edgeproof.* (pyproject package-dir)
LINKS = (".venv", ".venv-edge", "web_demo/node_modules")


@dataclass(frozen=True)
class Mutation:
    name: str
    what: str
    path: str  # relative to the checkout
    old: str
    new: str
    tests: tuple[str, ...]  # pytest node ids / files, relative to the checkout


MUTATIONS = (
    Mutation(
        "swap-output-channels",
        "runtime/_signature.py from_artifact: channels 0 and 1 of every artifact output swapped (the binding step "
        "every .tflite output goes through, in verify and on the device)",
        "runtime/_signature.py",
        "    return _transpose(array, binding.layout, binding.canonical_layout)\n",
        "    array = _transpose(array, binding.layout, binding.canonical_layout)\n"
        "    if array.ndim >= 2 and array.shape[-1] >= 2:  # MUTATION: channels 0 and 1 swapped\n"
        "        array = array[..., [1, 0] + list(range(2, array.shape[-1]))]\n"
        "    return array\n",
        ("tests/test_runtime_properties.py", "tests/test_runtime.py",
         "tests/test_verify.py::test_verifying_side_by_side_gives_the_verdicts_of_one_at_a_time"),
    ),
    Mutation(
        "gate-skips-sha256",
        "deploy/_gate.py _refusal: the sha256 comparison of the artifact's files with the verified ones dropped",
        "deploy/_gate.py",
        "    if current != verdict.files:\n",
        "    if False and current != verdict.files:  # MUTATION: sha256 check dropped\n",
        ("tests/test_deploy.py",),
    ),
    Mutation(
        "imdb-filters",
        "edgeproof/_tokenizers.py IMDB_FILTERS: '-' no longer a separator (\"loved-it\" stays one word)",
        "edgeproof/_tokenizers.py",
        "IMDB_FILTERS = '!\"#$%&()*+,-./:;<=>?@[\\\\]^_`{|}~\\t\\n'\n",
        "IMDB_FILTERS = '!\"#$%&()*+,./:;<=>?@[\\\\]^_`{|}~\\t\\n'  # MUTATION: '-' dropped\n",
        ("tests/test_tokenizers.py", "tests/test_runtime.py::test_raw_inputs_for_every_task"),
    ),
)


def checkout_files() -> list[str]:
    """Tracked and untracked-but-not-ignored files of the checkout (read-only git)."""
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                         capture_output=True, check=True).stdout
    return [p for p in out.decode().split("\0") if p and (REPO / p).is_file()]


def scratch_copy(dest: Path, mutation: Mutation | None) -> Path:
    """A runnable copy of the checkout in dest/repo, with `mutation` applied before the package is assembled."""
    root = dest / "repo"
    for rel in checkout_files():
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, target)
    if mutation is not None:
        path = root / mutation.path
        text = path.read_text()
        if text.count(mutation.old) != 1:
            raise SystemExit(f"mutation {mutation.name}: the text to replace occurs {text.count(mutation.old)} times in "
                             f"{mutation.path} (expected once): the code changed; update MUTATIONS in {__file__}")
        path.write_text(text.replace(mutation.old, mutation.new))
    pkg = root / "edgeproof"  # the copy's own package, its subpackages linked in: an `edgeproof.runtime` missing
    # here would be found by the checkout's editable install instead (the copy would run unmutated code)
    for name in PACKAGES:
        (pkg / name).symlink_to(root / name, target_is_directory=True)
    for link in LINKS:
        if (REPO / link).exists():
            (root / link).parent.mkdir(parents=True, exist_ok=True)
            (root / link).symlink_to(REPO / link, target_is_directory=True)
    check_imports(root, mutation)
    return root


def check_imports(root: Path, mutation: Mutation | None) -> None:
    """Every edgeproof module the mutations touch must come from the copy, and the mutated one must hold the
    mutation: otherwise a 'missed' would prove nothing about the tests."""
    modules = {"runtime/_signature.py": "edgeproof.runtime._signature", "deploy/_gate.py": "edgeproof.deploy._gate",
               "edgeproof/_tokenizers.py": "edgeproof._tokenizers"}
    code = "import importlib, sys\nfor m in sys.argv[1:]:\n    print(importlib.import_module(m).__file__)"
    out = subprocess.run([str(root / ".venv" / "bin" / "python"), "-c", code, *modules.values()], cwd=root,
                         env={**os.environ, "PYTHONPATH": str(root)}, capture_output=True, text=True)
    files = out.stdout.split()
    if out.returncode != 0 or len(files) != len(modules) or not all(f.startswith(str(root)) for f in files):
        raise SystemExit(f"the scratch copy's modules do not resolve inside it ({files or out.stderr[-300:]}): "
                         f"the check would test the checkout, not the copy")
    if mutation is not None:
        mutated = files[list(modules).index(mutation.path)]
        if mutation.new.strip().splitlines()[0] not in Path(mutated).read_text():
            raise SystemExit(f"{mutated} does not hold the mutation {mutation.name}")


@dataclass
class Run:
    seconds: float
    returncode: int
    failed: list[str]
    passed: int
    tail: str


def run_tests(root: Path, tests: tuple[str, ...], reuse: Path | None, label: str) -> Run:
    env = {**os.environ, "PYTHONPATH": str(root), "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    # the datasets sit beside the checkout (../shared/datasets), not beside a scratch copy
    env.setdefault("EDGEPROOF_DATA_DIR", str(REPO.parent / "shared" / "datasets"))
    env.pop("EDGEPROOF_TEST_REUSE_TRAINED", None)
    if reuse is not None:
        env["EDGEPROOF_TEST_REUSE_TRAINED"] = str(reuse)
    report = root / f"junit-{label}.xml"
    cmd = [str(root / ".venv" / "bin" / "python"), "-m", "pytest", "-p", "no:cacheprovider", "-q",
           f"--basetemp={root / '.pytest-tmp'}", f"--junitxml={report}", *tests]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    failed, passed = [], 0
    if report.exists():
        for case in ET.parse(report).getroot().iter("testcase"):
            node = f"{case.get('classname', '').replace('.', '/')}.py::{case.get('name')}"
            if case.find("failure") is not None or case.find("error") is not None:
                failed.append(node)
            elif case.find("skipped") is None:
                passed += 1
    tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
    return Run(seconds, proc.returncode, failed, passed, tail)


def make_fast_artifacts(work: Path) -> Path:
    """Run the session fixtures once in a pristine copy; returns their fast-artifacts folder."""
    root = scratch_copy(work / "fixtures", None)
    print("no --reuse folder: training, converting and verifying the ten fast models once (about 40 minutes)", flush=True)
    run = run_tests(root, ("tests/test_verify.py::test_the_report_lists_every_artifact",), None, "fixtures")
    folder = root / ".pytest-tmp" / "fast-artifacts0"
    if run.returncode != 0 or not folder.is_dir():
        raise SystemExit(f"making the fast artifacts failed:\n{run.tail}")
    keep = work / "fast-artifacts"
    shutil.move(str(folder), keep)
    return keep


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reuse", type=Path, default=os.environ.get("EDGEPROOF_TEST_REUSE_TRAINED") or None,
                        help="a fast-artifacts folder made by tests/conftest.py's fixtures (default: "
                             "$EDGEPROOF_TEST_REUSE_TRAINED; none: make one first)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch copies (printed) instead of deleting them")
    parser.add_argument("--only", nargs="+", choices=[m.name for m in MUTATIONS], help="run these mutations only")
    args = parser.parse_args(argv)
    if args.reuse is not None and not (args.reuse / "mnist_cnn" / "keras" / "parity.json").is_file():
        print(f"error: {args.reuse} is not a fast-artifacts folder made by the test fixtures (no "
              f"mnist_cnn/keras/parity.json); run without --reuse to make one", file=sys.stderr)
        return 2
    mutations = [m for m in MUTATIONS if args.only is None or m.name in args.only]
    work = Path(tempfile.mkdtemp(prefix="edgeproof-mutation-"))
    started = time.perf_counter()
    try:
        reuse = args.reuse.resolve() if args.reuse is not None else make_fast_artifacts(work)
        tests = tuple(dict.fromkeys(t for m in mutations for t in m.tests))
        baseline = run_tests(scratch_copy(work / "baseline", None), tests, reuse, "baseline")
        print(f"baseline (no mutation): {baseline.passed} passed, {len(baseline.failed)} failed in "
              f"{baseline.seconds:.0f} s", flush=True)
        if baseline.failed or baseline.returncode != 0:
            print("the unmutated copy fails these tests, so a failure under a mutation proves nothing:\n  "
                  + "\n  ".join(baseline.failed) + f"\n{baseline.tail}")
            return 1
        caught_all = True
        for m in mutations:
            run = run_tests(scratch_copy(work / m.name, m), m.tests, reuse, m.name)
            caught = bool(run.failed) or run.returncode != 0
            caught_all &= caught
            print(f"\n[{'CAUGHT' if caught else 'MISSED'}] {m.name} ({run.seconds:.0f} s): {m.what}", flush=True)
            for node in run.failed:
                print(f"    failed: {node}")
            if not caught:
                print(f"    every test passed ({run.passed}): the suite does not notice this mutation")
            elif not run.failed:
                print(f"    pytest exited {run.returncode}:\n{run.tail}")
        print(f"\n{'all' if caught_all else 'NOT all'} {len(mutations)} mutations caught; "
              f"{time.perf_counter() - started:.0f} s in all")
        return 0 if caught_all else 1
    finally:
        if args.keep:
            print(f"scratch copies kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
