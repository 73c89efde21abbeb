"""OTA bundles: one file a board can check and unpack with little RAM, and the centre's key.

Layout (firmware/ow/ota.py reads it):

    b"OWB1" | manifest length, 4 bytes big-endian | manifest JSON | the files' bytes

The manifest is `{"format": 1, "version", "roles", "boards", "files": [{"p": path under
app/, "n": size, "h": sha256 hex}]}`, the files follow in its order. The whole bundle's
SHA-256 is signed with the centre's RSA-2048 key, PKCS #1 v1.5 — the scheme a board can
check with one `pow(s, 65537, n)` and no crypto library. The signature travels in the
offer, the public modulus in each board's `ow.json` (`ota_pubkey`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

__all__ = ["Bundle", "BundleError", "build_bundle", "keygen", "load_private_key",
           "parse_bundle", "public_key_for_config", "sign", "verify"]

MAGIC = b"OWB1"
ROLES = ("led", "hall", "box", "keypad")  # the MicroPython roles (nodes update with pip)
_PATH = re.compile(r"^[A-Za-z0-9_.\-/]+$")


class BundleError(ValueError):
    """A bundle, image or key that cannot be used; the message says why."""


@dataclass(frozen=True, slots=True)
class Bundle:
    data: bytes
    manifest: dict

    @property
    def version(self) -> str:
        return str(self.manifest["version"])

    @property
    def downgrade(self) -> bool:
        return bool(self.manifest.get("downgrade"))

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def _files(app: Path) -> list[Path]:
    files = []
    for p in sorted(app.rglob("*")):
        if not p.is_file() or p.stem == "ow_version" or "__pycache__" in p.parts:
            continue  # the board writes its ow_version from the manifest
        rel = p.relative_to(app).as_posix()
        if not _PATH.match(rel) or ".." in rel:
            raise BundleError(f"file name a board cannot take: {rel}")
        files.append(p)
    return files


def build_bundle(image: Path, version: str, roles: list[str] | None = None,
                 downgrade: bool = False) -> Bundle:
    """A bundle from an image folder (tools/firmware.py build): its app/ folder, for the
    boards whose board file it holds. Boards refuse a version not newer than theirs unless
    the (signed) manifest says `downgrade`."""
    image = Path(image)
    app = image / "app" if (image / "app").is_dir() else image
    boards = sorted(p.stem for p in (app / "boards").glob("*.*") if p.stem != "__init__")
    if not boards or not (app / "ow").is_dir():
        raise BundleError(f"{image} is not a firmware image (tools/firmware.py build)")
    if not version or not re.match(r"^[A-Za-z0-9_.+\-]{1,32}$", version):
        raise BundleError(f"bad version {version!r}")
    files = _files(app)
    blobs = [f.read_bytes() for f in files]
    manifest = {"format": 1, "version": version, "roles": list(roles or ROLES),
                "boards": boards, **({"downgrade": True} if downgrade else {}),
                "files": [{"p": f.relative_to(app).as_posix(), "n": len(b),
                           "h": hashlib.sha256(b).hexdigest()} for f, b in zip(files, blobs,
                                                                               strict=True)]}
    head = json.dumps(manifest, separators=(",", ":")).encode()
    data = MAGIC + len(head).to_bytes(4, "big") + head + b"".join(blobs)
    return Bundle(data, manifest)


def parse_bundle(data: bytes) -> Bundle:
    """Check a bundle's structure and every file hash, as a board does after download."""
    if data[:4] != MAGIC or len(data) < 8:
        raise BundleError("not a OneWindow bundle (no OWB1 header)")
    n = int.from_bytes(data[4:8], "big")
    try:
        manifest = json.loads(data[8:8 + n])
    except ValueError as e:
        raise BundleError(f"manifest is not JSON: {e}") from e
    off = 8 + n
    for ent in manifest.get("files", ()):
        blob = data[off:off + ent["n"]]
        if len(blob) != ent["n"] or hashlib.sha256(blob).hexdigest() != ent["h"]:
            raise BundleError(f"{ent['p']}: size or sha256 differs from the manifest")
        off += ent["n"]
    if off != len(data):
        raise BundleError(f"{len(data) - off} bytes after the last file")
    for key in ("version", "roles", "boards", "files"):
        if key not in manifest:
            raise BundleError(f"manifest has no {key}")
    return Bundle(data, manifest)


# ---- the centre's key ---------------------------------------------------------------------

def keygen(path: Path) -> Path:
    """Make the centre's OTA key pair: `path` (private, PEM, mode 0600) and `path`.pub.
    Refuses to overwrite: every board trusts the old public key."""
    path = Path(path)
    if path.exists():
        raise BundleError(f"{path} exists: boards trust it; move it away first")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    os.chmod(path, 0o600)  # whatever the umask
    pub = key.public_key().public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    pub_path = path.with_name(path.name + ".pub")
    pub_path.write_bytes(pub)
    return pub_path


def load_private_key(path: Path) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise BundleError(f"{path} is not an RSA private key")
    return key


def _public(path: Path) -> rsa.RSAPublicKey:
    data = Path(path).read_bytes()
    if b"PRIVATE KEY" in data:
        return load_private_key(path).public_key()
    key = serialization.load_pem_public_key(data)
    if not isinstance(key, rsa.RSAPublicKey):
        raise BundleError(f"{path} is not an RSA public key")
    return key


def _check_key(key: rsa.RSAPublicKey) -> None:
    if key.public_numbers().e != 65537 or key.key_size < 2048:
        raise BundleError("the OTA key must be RSA ≥ 2048 bits with e = 65537")


def public_key_for_config(path: str | Path) -> str:
    """The `ota_pubkey` value of a board's ow.json: the RSA modulus, big-endian, base64.
    `path` is the centre's key file or its .pub."""
    key = _public(Path(path))
    _check_key(key)
    n = key.public_numbers().n
    return base64.b64encode(n.to_bytes((n.bit_length() + 7) // 8, "big")).decode()


def sign(bundle: Bundle, key: rsa.RSAPrivateKey) -> str:
    """Base64 PKCS #1 v1.5 signature of the bundle's SHA-256."""
    _check_key(key.public_key())
    return base64.b64encode(key.sign(bundle.data, padding.PKCS1v15(),
                                     hashes.SHA256())).decode()


def verify(bundle: Bundle, sig: str, pubkey: str) -> bool:
    """Check a signature the way a board does, against an `ota_pubkey` string."""
    n = int.from_bytes(base64.b64decode(pubkey), "big")
    key = rsa.RSAPublicNumbers(65537, n).public_key()
    try:
        key.verify(base64.b64decode(sig), bundle.data, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError):
        return False
    return True
