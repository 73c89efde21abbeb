"""A resident's ID number typed at a community station, sealed in the browser to the hub and
turned into the card path's resident token at the hub (docs/privacy.md, "Stations").

The station page may have to keep a submission for hours while its link is down (its
IndexedDB queue), so the number must not wait there in clear, and the card key must not
reach the browser. So the page seals the number at once, as typed, to the hub's public
key: ECIES over P-256 (an ephemeral ECDH key, HKDF-SHA256 salted with that key, AES-256-GCM),
all WebCrypto, and forgets the clear text. Only the hub can open it: its private key is
derived from the card key (`[stations] card_key_file`, the nodes' `centre.key`), so there is
no new key file to keep, and the page gets only the public half. The hub opens the seal,
checks the number, hashes it with `node.card.resident_token` (the very function a card
tap's node uses: a typed number and the card give one token) and drops it: it is never
journaled, stored or logged. The seal itself is random each time, so it says nothing about
which resident it holds.

Wire form: three base64url parts joined by ".": the ephemeral public key (65 bytes,
uncompressed point), the 12-byte nonce, the ciphertext with its tag.
"""

from __future__ import annotations

import base64
import binascii
import re

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ...node.card import resident_token

INFO = b"onewindow station id v1"  # HKDF info of the page's seal (station.js says the same)
_KEY_INFO = b"onewindow station seal key v1|"
MAX_SEALED = 400  # characters: 65 + 12 + ~40 bytes, base64url
_ID18 = re.compile(r"^[0-9]{17}[0-9X]$")
_OTHER_ID = re.compile(r"^[A-Z0-9]{6,20}$")  # passports, permits: letters and digits
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"


class SealError(ValueError):
    """The seal cannot be opened or holds no usable number (said without the number)."""

    def __init__(self, code: str, msg: str) -> None:
        super().__init__(msg)
        self.code, self.msg = code, msg


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def id_ok(number: str) -> bool:
    """An 18-character resident ID number (居民身份证号) with its check character right, or
    another document's number of 6-20 letters and digits (passport, permits)."""
    if _ID18.match(number):
        total = sum(int(d) * w for d, w in zip(number[:17], _WEIGHTS, strict=True))
        return _CHECK[total % 11] == number[17]
    return bool(_OTHER_ID.match(number)) and not number.isdigit()


class IdSeal:
    def __init__(self, card_key: bytes, centre: str) -> None:
        self._card_key = card_key
        seed = HKDF(hashes.SHA256(), 48, None, _KEY_INFO + centre.encode()).derive(card_key)
        order = int("FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551", 16)
        self._key = ec.derive_private_key(int.from_bytes(seed, "big") % (order - 1) + 1,
                                          ec.SECP256R1())
        self.public = _b64(self._key.public_key().public_bytes(
            Encoding.X962, PublicFormat.UncompressedPoint))

    def token(self, sealed: str) -> str:
        """The resident token of the number inside `sealed`. Raises SealError."""
        parts = sealed.split(".") if isinstance(sealed, str) and len(sealed) <= MAX_SEALED \
            else []
        if len(parts) != 3:
            raise SealError("bad_seal", "证件号密文格式不对，请重新输入 / the sealed ID number is "
                                        "malformed: type it again")
        try:
            epk_raw, iv, ct = (_unb64(p) for p in parts)
            epk = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), epk_raw)
            shared = self._key.exchange(ec.ECDH(), epk)
            key = HKDF(hashes.SHA256(), 32, epk_raw, INFO).derive(shared)
            number = AESGCM(key).decrypt(iv, ct, None).decode()
        except (ValueError, binascii.Error, InvalidTag, UnicodeDecodeError) as e:
            raise SealError("bad_seal", "证件号无法解密（站点页面的密钥已过期？请刷新后重新输入）/ "
                                        "the ID number cannot be opened (the page's key is out "
                                        "of date? reload and type it again)") from e
        number = "".join(number.split()).upper()
        if not id_ok(number):
            raise SealError("bad_id", "证件号码有误，请核对 / the ID number is not valid: check "
                                      "it with the resident")
        return resident_token(self._card_key, number)


__all__ = ["INFO", "IdSeal", "SealError", "id_ok"]
