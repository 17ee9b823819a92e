"""Verify a bundle's OpenSSF model-signing signature (PyPI `model-signing`, key-based, offline).

The signature (`model.sig` in the bundle, a Sigstore bundle) covers every file of the bundle,
manifest.json included, so the verdict, budgets, self-test and checksums it holds are covered too.
`model_signing` is imported only here and only when a key is given: `pip install edgeproof` stays
numpy-only; `pip install "edgeproof[signing]"` adds it.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ._manifest import BundleError

SIGNATURE_FILE = "model.sig"
INSTALL_HINT = 'pip install "edgeproof[signing]"'


class SignatureError(BundleError):
    """A bundle whose signature is missing, invalid, or does not match its files."""


def import_model_signing():
    try:
        import model_signing
    except ImportError as err:
        raise SignatureError(f"checking bundle signatures needs the OpenSSF model-signing package, which is not "
                             f"installed ({err}); install it with: {INSTALL_HINT}") from None
    return model_signing


def _reason(err: Exception) -> str:
    """model_signing's mismatch report (a list repr with digests) as one short line naming the files."""
    text = str(err).strip()
    if not text.startswith("Signature mismatch"):
        return (text.splitlines() or [type(err).__name__])[0][:300]
    parts = []
    changed = re.findall(r"Hash mismatch for \\*'([^'\\]+)\\*'", text)
    if changed:
        parts.append(f"changed: {', '.join(changed)} (the file differs from the signed one)")
    for label, pattern in (("added", "Extra files found"), ("removed", "Missing files")):
        found = re.search(pattern + r" in model '[^']*': ([^\"\]]+)", text)
        if found:
            parts.append(f"{label}: {found.group(1).strip().rstrip(chr(39)).strip()}")
    return "; ".join(parts) or text.splitlines()[0][:300]


def verify_bundle_signature(bundle_dir: Path | str, public_key_path: Path | str) -> dict[str, Any]:
    """Check `bundle_dir/model.sig` against `public_key_path` (a PEM elliptic-curve public key) and the
    bundle's files. Unsigned, altered (any byte of any file, or a file added or removed) or signed by
    another key: SignatureError naming the problem. Returns what was checked."""
    bundle, key = Path(bundle_dir), Path(public_key_path)
    if not bundle.is_dir():
        raise SignatureError(f"{bundle} is not a bundle folder")
    if not key.is_file():
        raise SignatureError(f"public key {key} not found: give the PEM public key that matches the signing key")
    signature = bundle / SIGNATURE_FILE
    if not signature.is_file() or signature.is_symlink():
        raise SignatureError(f"{bundle} is not signed (no {SIGNATURE_FILE}) and a public key was given: refusing it; "
                             f"sign bundles with `edgeproof deploy --sign-key KEY`")
    model_signing = import_model_signing()
    try:
        config = model_signing.verifying.Config().use_elliptic_key_verifier(public_key=key)
        config.verify(bundle, signature)
    except Exception as err:  # model_signing raises ValueError, cryptography and JSON errors: all mean "refuse"
        raise SignatureError(f"{bundle}: signature check against {key} failed ({_reason(err)}); the bundle was "
                             f"altered after signing or was signed with another key: do not use it") from None
    return {"signed": True, "signature": str(signature), "public_key": str(key)}
