"""The documentation: README.md is a front page of at most 150 lines, the docs site builds with
`mkdocs build --strict` (a broken link, anchor or snippet, or a page left out of the nav fails), every page
under docs/ is in mkdocs.yml's nav, the command reference matches the parser, and the hosting page names
every header the demo server sends."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO

DOCS = REPO / "docs"
README_MAX_LINES = 150  # issue 16: "a README of at most 150 lines"


def _nav_pages(nav) -> list[str]:
    """Every page path in an mkdocs nav (a list of strings and {title: page or sub-nav} mappings)."""
    pages: list[str] = []
    for entry in nav:
        values = entry.values() if isinstance(entry, dict) else [entry]
        for value in values:
            pages += _nav_pages(value) if isinstance(value, list) else [value]
    return pages


def _mkdocs_config() -> dict:
    import yaml

    return yaml.safe_load((REPO / "mkdocs.yml").read_text(encoding="utf-8"))


def test_mkdocs_build_strict(tmp_path):
    import importlib.util

    for module in ("mkdocs", "material"):  # material: mkdocs-material, the theme
        if importlib.util.find_spec(module) is None:
            pytest.fail(f"{module} is missing: install the docs extra (scripts/setup.sh main does it)")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}  # mkdocs-material's end-of-life banner
    run = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                         cwd=REPO, capture_output=True, text=True, timeout=600, env=env)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    for page in _nav_pages(_mkdocs_config()["nav"]):
        built = tmp_path / "site" / (page.removesuffix(".md").removesuffix("index") + "/index.html").lstrip("/")
        assert built.is_file(), f"{page} was not built ({built})"
    # The snippets were expanded, not left as text: the architecture page holds ARCHITECTURE.md's words.
    assert "ZooSource" in (tmp_path / "site" / "architecture" / "index.html").read_text(encoding="utf-8")


def test_every_docs_page_is_in_the_nav_and_every_nav_page_exists():
    nav = _nav_pages(_mkdocs_config()["nav"])
    assert len(nav) == len(set(nav)), f"a page is in the nav twice: {nav}"
    pages = sorted(p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md"))
    assert sorted(nav) == pages, f"not in the nav: {sorted(set(pages) - set(nav))}; " \
                                 f"in the nav but missing: {sorted(set(nav) - set(pages))}"


def test_readme_is_a_short_front_page():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    lines = text.splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines (at most {README_MAX_LINES})"
    for must in ("make demo", "make test", "from edgeproof import convert_user_model",
                 "edgeproof convert --onnx model.onnx --sample-data sample.npz", "ZooSource"):
        assert must in text, must
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    local = [link for link in links if "://" not in link]
    assert any(link.startswith("docs/") for link in local), "the README links into the docs"
    missing = [link for link in local if not (REPO / link).exists()]
    assert not missing, f"README.md links to missing files: {missing}"


def test_cli_reference_matches_the_parser():
    """docs/cli.md's generated part is what scripts/cli_docs.py makes from edgeproof.cli.build_parser() now."""
    run = subprocess.run([sys.executable, str(REPO / "scripts" / "cli_docs.py"), "--check"], cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr


def test_hosting_page_names_every_header_the_server_sends():
    from edgeproof.deploy._server import ISOLATION_HEADERS, MIME_TYPES

    page = (DOCS / "browser-demo.md").read_text(encoding="utf-8")
    for header, value in ISOLATION_HEADERS.items():
        assert re.search(rf"\|\s*`{re.escape(header)}`\s*\|\s*`{re.escape(value)}`\s*\|", page), header
    assert f"`{MIME_TYPES['.wasm']}`" in page


def test_every_measured_table_keeps_its_command():
    """Each measured table moved out of the README still has the command that produces it on its page."""
    commands = {
        "models.md": ["python -m edgeproof.train.report artifacts-full", "edgeproof pipeline --profile default"],
        "conversion.md": ["python -m edgeproof.convert.compare_backends"],
        "verification.md": ["python -m edgeproof.verify artifacts-full"],
        "byom.md": ["python -m benchmarks.user_models --out artifacts-byom"],
    }
    for page, needed in commands.items():
        text = (DOCS / page).read_text(encoding="utf-8")
        for command in needed:
            assert command in text, f"docs/{page}: {command}"


def test_docs_tools_are_pinned_in_the_lock_and_declared_as_an_extra():
    lock = (REPO / "requirements" / "pipeline.lock").read_text(encoding="utf-8").lower()
    for pin in ("mkdocs==", "mkdocs-material==", "build=="):
        assert re.search(rf"^{re.escape(pin)}\d", lock, re.MULTILINE), pin
    import tomllib

    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert {re.split(r"[<>=!~ ]", r)[0] for r in extras["docs"]} == {"mkdocs", "mkdocs-material"}
    assert Path(REPO / "mkdocs.yml").is_file()
