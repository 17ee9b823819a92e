"""Sign a deploy bundle in the OpenSSF model-signing format (PyPI `model-signing`), key-based, offline.

The signature `model.sig` covers every file of the bundle (manifest.json with its verdict, budgets,
self-test and checksums included); only `model.sig` itself is left out. Verify with
`edgeproof verify-bundle BUNDLE --public-key KEY` or `Model.load(bundle, public_key=KEY)`.

Call `sign_bundle` on the bundle's temporary folder, after every file is written and before
replacing_dir swaps it in: the signed bundle then appears complete or not at all.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from edgeproof.runtime._bundle_signing import (
    SIGNATURE_FILE,
    SignatureError,
    import_model_signing,
)


def sign_bundle(bundle_dir: Path | str, private_key_path: Path | str, password: Optional[str] = None) -> Path:
    """Write `bundle_dir/model.sig`, signing every file in the folder with the PEM elliptic-curve private
    key at `private_key_path`. Returns the signature's path."""
    bundle, key = Path(bundle_dir), Path(private_key_path)
    if not bundle.is_dir():
        raise SignatureError(f"{bundle} is not a bundle folder")
    if not key.is_file():
        raise SignatureError(f"signing key {key} not found: give a PEM elliptic-curve private key "
                             f"(e.g. `openssl ecparam -name prime256v1 -genkey -noout -out key.pem`)")
    model_signing = import_model_signing()
    signature = bundle / SIGNATURE_FILE
    signature.unlink(missing_ok=True)
    hashing = model_signing.hashing.Config().set_ignored_paths(paths=[SIGNATURE_FILE], ignore_git_paths=False)
    try:
        config = model_signing.signing.Config().use_elliptic_key_signer(private_key=key, password=password)
        config.set_hashing_config(hashing).sign(bundle, signature)
    except (ValueError, TypeError, OSError) as err:
        signature.unlink(missing_ok=True)
        raise SignatureError(f"cannot sign {bundle} with {key}: {str(err).splitlines()[0] if str(err) else err!r}; "
                             f"give an unencrypted (or --password) PEM elliptic-curve private key") from None
    return signature


def generate_key_pair(private_key_path: Path | str, public_key_path: Path | str) -> tuple[Path, Path]:
    """A new P-256 key pair as PEM files (the private key readable by its owner only)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    private, public = Path(private_key_path), Path(public_key_path)
    key = ec.generate_private_key(ec.SECP256R1())
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    private.chmod(0o600)
    public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo))
    return private, public
