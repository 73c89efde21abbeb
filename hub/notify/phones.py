"""Residents' phone numbers: parsed, normalised, sealed, masked.

Only mainland China mobile numbers are taken (11 digits, 1[3-9]…, optionally written with
+86 / 0086 / 86, spaces, hyphens, full-width digits): a notice goes by SMS, and a landline
cannot receive one. Parsing is Google's libphonenumber metadata (the `phonenumbers`
package), so an unallocated block such as 140… or 154… is refused as well.

A number is kept only sealed (`PhoneVault.seal` → `PhoneRef`): AES-256-GCM under a key
derived with HKDF-SHA256 from the centre's 32-byte secret (the fleet registry's
`fleet_secret`) and bound to the centre id as associated data, so a token copied to
another centre does not open. `Phone` itself prints masked (138****5678): a stray log line
or repr shows no clear number. `PhoneVault.fingerprint` gives a keyed, stable digest for
limits "per phone" without keeping the number.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
from dataclasses import dataclass

import phonenumbers
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .channel import PhoneRef

__all__ = ["Phone", "PhoneError", "PhoneVault", "mask", "parse_phone"]

_MOBILE = re.compile(r"^1[3-9][0-9]{9}$")
_MAX_INPUT = 40  # longest written form worth parsing ("+86 (138) 1234-5678" and the like)
_TOKEN_PREFIX = "p1."
_NONCE = 12

# code: (zh-CN, zh-TW, English) — shown to the resident as is.
_MESSAGES = {
    "empty": ("请输入手机号码", "請輸入手機號碼", "Please enter a mobile number"),
    "malformed": ("手机号码格式不正确", "手機號碼格式不正確", "The mobile number is not valid"),
    "not_mainland": ("仅支持中国大陆手机号码", "僅支援中國大陸手機號碼",
                     "Only mainland China mobile numbers are accepted"),
    "not_mobile": ("请填写手机号码（11位，1开头），座机无法接收短信",
                   "請填寫手機號碼（11位，1開頭），市話無法接收簡訊",
                   "Enter a mobile number (11 digits starting with 1): landlines cannot "
                   "receive SMS"),
    "sealed": ("号码记录已损坏或不属于本中心", "號碼記錄已損壞或不屬於本中心",
               "The number's record is damaged or belongs to another centre"),
}


class PhoneError(ValueError):
    """A number that is not a mainland mobile number (or a sealed one that does not open).
    `code` names the reason, `text(lang)` says it in the resident's language; the message
    never repeats the number."""

    def __init__(self, code: str) -> None:
        self.code = code
        zh_cn, zh_tw, en = _MESSAGES[code]
        self.messages = {"zh-CN": zh_cn, "zh-TW": zh_tw, "en": en}
        super().__init__(f"{zh_cn} / {zh_tw} / {en}")

    def text(self, lang: str) -> str:
        return self.messages.get(lang, self.messages["zh-CN"])


@dataclass(frozen=True, slots=True)
class Phone:
    """A mainland mobile number, normalised: `national` is the 11 digits."""

    national: str

    def __post_init__(self) -> None:
        if not isinstance(self.national, str) or not _MOBILE.match(self.national):
            raise PhoneError("not_mobile")

    @property
    def e164(self) -> str:
        return "+86" + self.national

    @property
    def masked(self) -> str:
        return mask(self)

    def __repr__(self) -> str:
        return f"Phone({self.masked})"

    __str__ = __repr__


def mask(phone: Phone) -> str:
    """The number as a screen may show it: 138****5678."""
    n = phone.national
    return n[:3] + "****" + n[7:]


def parse_phone(raw: str) -> Phone:
    """`raw` as the resident typed it → `Phone`, or `PhoneError` saying why not."""
    if not isinstance(raw, str) or not raw.strip():
        raise PhoneError("empty")
    if len(raw) > _MAX_INPUT:
        raise PhoneError("malformed")
    text = raw.strip()
    # "86138…" without a plus: libphonenumber reads it as a national number with a
    # leading 86; it is the country code written without "+".
    digits = re.sub(r"[\s\-().]", "", text)
    if re.fullmatch(r"86[0-9]{11}", digits):
        text = "+" + digits
    try:
        parsed = phonenumbers.parse(text, "CN")
    except phonenumbers.NumberParseException:
        raise PhoneError("malformed") from None
    if parsed.country_code != 86:
        raise PhoneError("not_mainland")
    if parsed.extension or parsed.italian_leading_zero:
        raise PhoneError("malformed")
    national = str(parsed.national_number)
    if not _MOBILE.match(national):
        raise PhoneError("not_mobile")
    if not phonenumbers.is_valid_number(parsed) or phonenumbers.number_type(parsed) not in (
        phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE
    ):
        raise PhoneError("not_mobile")
    return Phone(national)


class PhoneVault:
    """Seals and opens phone numbers with keys derived from the centre's secret."""

    def __init__(self, secret: bytes, centre: str) -> None:
        if not isinstance(secret, bytes) or len(secret) < 16:
            raise ValueError("phone vault: the centre secret must be at least 16 bytes")
        if not centre:
            raise ValueError("phone vault: empty centre id")
        self._aad = b"onewindow phone v1|" + centre.encode()
        self._aead = AESGCM(_derive(secret, centre, b"onewindow phone seal v1"))
        self._mac_key = _derive(secret, centre, b"onewindow phone fingerprint v1")

    def __repr__(self) -> str:
        return "PhoneVault(<key>)"

    def seal(self, phone: Phone, nonce: bytes | None = None) -> PhoneRef:
        """A fresh token for `phone` (a random nonce each time: two seals of one number
        differ). `nonce` is for tests that need a fixed token."""
        n = os.urandom(_NONCE) if nonce is None else nonce
        if len(n) != _NONCE:
            raise ValueError("phone vault: nonce must be 12 bytes")
        sealed = self._aead.encrypt(n, phone.national.encode(), self._aad)
        return PhoneRef(_TOKEN_PREFIX + base64.urlsafe_b64encode(n + sealed).decode().rstrip("="))

    def open(self, ref: PhoneRef) -> Phone:
        """The number inside `ref`, or `PhoneError("sealed")` if it was altered or sealed
        by another centre's key."""
        body = ref.token[len(_TOKEN_PREFIX):]
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        except (ValueError, TypeError):
            raise PhoneError("sealed") from None
        if len(raw) <= _NONCE + 16:
            raise PhoneError("sealed")
        try:
            clear = self._aead.decrypt(raw[:_NONCE], raw[_NONCE:], self._aad)
        except InvalidTag:
            raise PhoneError("sealed") from None
        try:
            return Phone(clear.decode("ascii"))
        except (UnicodeDecodeError, PhoneError):
            raise PhoneError("sealed") from None

    def fingerprint(self, phone: Phone) -> str:
        """A stable keyed digest of the number (HMAC-SHA256, hex, 32 chars): the same
        number gives the same fingerprint in this centre, for limits per phone."""
        return hmac.new(self._mac_key, phone.national.encode(), hashlib.sha256).hexdigest()[:32]


def _derive(secret: bytes, centre: str, label: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=centre.encode(),
                info=label).derive(secret)
