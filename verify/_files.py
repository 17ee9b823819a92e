"""The files an artifact consists of, with their sha256: recorded in parity.json when it is verified,
compared again by deploy so a file changed since then is refused."""
from __future__ import annotations

from pathlib import Path

from edgeproof.runtime._manifest import sha256_of


def artifact_files(root: Path, rel: str) -> dict[str, str]:
    """Every file an artifact consists of (a .tflite, or a TF.js model.json and its shards) -> sha256."""
    path = Path(root) / rel
    paths = [path] if path.suffix == ".tflite" else sorted(p for p in path.parent.iterdir() if p.is_file())
    return {str(p.relative_to(root)): sha256_of(p) for p in paths if p.exists()}
