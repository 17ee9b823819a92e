"""The files an artifact consists of, with their sha256: recorded in parity.json when it is verified,
compared again by deploy so a file changed since then is refused."""
from __future__ import annotations

from pathlib import Path

from edgeproof.errors import EdgeproofError
from edgeproof.runtime._manifest import sha256_of


class ArtifactPathError(EdgeproofError, ValueError):
    """A recorded artifact path that leaves the model's folder (a hand-edited or hostile parity.json)."""


def inside(root: Path, rel: str) -> Path:
    """root/rel, refused when it is absolute or resolves (symlinks included) outside root."""
    root = Path(root).resolve()
    if not isinstance(rel, str) or not rel or Path(rel).is_absolute():
        raise ArtifactPathError(f"artifact path {rel!r} is not a path inside {root}")
    path = (root / rel).resolve()
    if root not in path.parents:
        raise ArtifactPathError(f"artifact path {rel!r} leaves {root}: refusing to read it")
    return path


def artifact_files(root: Path, rel: str) -> dict[str, str]:
    """Every file an artifact consists of (a .tflite, or a TF.js model.json and its shards) -> sha256."""
    root = Path(root).resolve()
    path = inside(root, rel)
    paths = [path] if path.suffix == ".tflite" else sorted(p for p in path.parent.iterdir() if p.is_file())
    return {str(p.relative_to(root)): sha256_of(p) for p in paths if p.exists()}
