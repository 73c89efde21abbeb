"""A resident's ID number typed on the booking page, turned into the card path's resident
token at the hub, so that tapping the ID card at a kiosk finds the booking (issue 16).

The number goes no further than this module: it is checked (an 18-character resident ID
number with its check character right, GB 11643; or another document's number of 6-20
letters and digits, as a kiosk's card application may hold), hashed with
`node.card.resident_token` under the nodes' card key (the very function and key a card tap
is hashed with on the node: one resident, one token) and dropped. Only the token is
journaled and kept; the number is never stored, logged or published.

The card key is the nodes' `centre.key`, which the hub reads from `[stations]
card_key_file` (hub/station_config.py): one key file for every place a typed number must
meet a card. Without it the booking page does not offer the field.
"""

from __future__ import annotations

import re

from ...node.card import resident_token

_ID18 = re.compile(r"^[0-9]{17}[0-9X]$")
_OTHER = re.compile(r"^[A-Z0-9]{6,20}$")
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"
MAX_INPUT = 40

# code: (zh-CN, zh-TW, English), shown to the resident as is; never repeats the number.
MESSAGES = {
    "bad_id": ("证件号码有误，请核对后重新输入", "證件號碼有誤，請核對後重新輸入",
               "The ID number is not valid: check it and type it again"),
    "no_card_key": ("本中心暂不支持凭身份证签到，请使用预约二维码",
                    "本中心暫不支援憑身分證簽到，請使用預約二維碼",
                    "Check-in by ID card is not available here: use the booking's QR code"),
}


class IdError(ValueError):
    def __init__(self, code: str) -> None:
        self.code = code
        self.messages = dict(zip(("zh-CN", "zh-TW", "en"), MESSAGES[code], strict=True))
        super().__init__(" / ".join(MESSAGES[code]))

    def text(self, lang: str) -> str:
        return self.messages.get(lang, self.messages["zh-CN"])


def normalise(typed: str) -> str:
    """Spaces dropped, upper case (a check letter 'x' is 'X'): as the node normalises."""
    return "".join(typed.split()).upper()


def valid(number: str) -> bool:
    if _ID18.match(number):
        total = sum(int(d) * w for d, w in zip(number[:17], _WEIGHTS, strict=True))
        return _CHECK[total % 11] == number[17]
    return bool(_OTHER.match(number)) and not number.isdigit()


def token(card_key: bytes | None, typed: object) -> str:
    """The resident token a card with this number gives at a kiosk. Raises IdError."""
    if card_key is None:
        raise IdError("no_card_key")
    if not isinstance(typed, str) or len(typed) > MAX_INPUT:
        raise IdError("bad_id")
    number = normalise(typed)
    if not valid(number):
        raise IdError("bad_id")
    return resident_token(card_key, number)


__all__ = ["IdError", "token", "valid"]
