"""Phone numbers for notices (hub/notify/phones.py): parsing and normalising mainland
mobile numbers, sealing them with the centre's key, masking; and the notice's own checks
(hub/notify/channel.py, texts.py). Pure: no peers needed."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from onewindow.hub.notify.channel import (
    LANGS,
    Notice,
    NoticeError,
    PhoneRef,
    Texts,
    notice_id,
)
from onewindow.hub.notify.phones import Phone, PhoneError, PhoneVault, mask, parse_phone
from onewindow.hub.notify.texts import compose

# Blocks allocated to the three carriers (and checked valid in libphonenumber's metadata).
PREFIXES = ["130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151",
            "152", "153", "155", "156", "157", "158", "159", "166", "176", "177", "178",
            "180", "181", "182", "183", "184", "185", "186", "187", "188", "189", "198",
            "199"]
FULLWIDTH = str.maketrans("0123456789", "０１２３４５６７８９")

mobiles = st.builds(lambda p, rest: p + rest, st.sampled_from(PREFIXES),
                    st.text("0123456789", min_size=8, max_size=8))


def written(national: str, style: int) -> str:
    """The ways residents write one number."""
    a, b, c = national[:3], national[3:7], national[7:]
    return [national, f"+86 {a} {b} {c}", f"0086{national}", f"86{national}",
            f"{a}-{b}-{c}", f"  {national}\t", f"+86-{national}", f"({a}) {b} {c}",
            national.translate(FULLWIDTH)][style]


@settings(max_examples=300, deadline=None)
@given(mobiles, st.integers(0, 8))
def test_every_written_form_normalises_to_the_same_number(national, style):
    phone = parse_phone(written(national, style))
    assert phone.national == national
    assert phone.e164 == "+86" + national


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.text(max_size=45), st.text("+0123456789 -()", max_size=20)))
def test_anything_else_is_a_clear_error_or_a_mainland_mobile(raw):
    try:
        phone = parse_phone(raw)
    except PhoneError as e:
        assert e.code in {"empty", "malformed", "not_mainland", "not_mobile"}
        assert set(e.messages) == set(LANGS)
        assert not re.search(r"[0-9]{4}", str(e))  # never repeats the number
        return
    assert re.fullmatch(r"1[3-9][0-9]{9}", phone.national)


@pytest.mark.parametrize(("raw", "code"), [
    ("", "empty"),
    ("   ", "empty"),
    ("abc", "malformed"),
    ("138123456789999999999999999999999999999999", "malformed"),
    ("010-12345678", "not_mobile"),  # a Beijing landline
    ("14012345678", "not_mobile"),  # unallocated block
    ("1381234567", "not_mobile"),  # 10 digits
    ("+1 650 253 0000", "not_mainland"),
    ("+852 9123 4567", "not_mainland"),  # Hong Kong mobile: not a mainland number
    ("13812345678 ext. 12", "malformed"),
])
def test_numbers_that_do_not_parse_say_why_in_three_languages(raw, code):
    with pytest.raises(PhoneError) as caught:
        parse_phone(raw)
    assert caught.value.code == code
    assert caught.value.text("zh-CN") != caught.value.text("en")
    assert caught.value.text("zh-TW") != caught.value.text("zh-CN")


def test_a_phone_shows_masked_everywhere_but_its_fields():
    phone = parse_phone("13812345678")
    assert mask(phone) == "138****5678" == phone.masked
    assert "13812345678" not in repr(phone)
    assert "13812345678" not in str(phone)
    assert "13812345678" not in f"{phone}"
    assert "13812345678" not in repr([phone])


VAULT = PhoneVault(b"s" * 32, "centre-a")


@settings(max_examples=200, deadline=None)
@given(mobiles)
def test_sealing_round_trips_and_hides_the_number(national):
    phone = Phone(national)
    ref = VAULT.seal(phone)
    assert VAULT.open(ref) == phone
    assert national not in ref.token
    assert national[-4:] not in repr(ref)
    assert VAULT.seal(phone) != ref  # a fresh nonce each time
    assert VAULT.fingerprint(phone) == VAULT.fingerprint(Phone(national))


@settings(max_examples=100, deadline=None)
@given(mobiles, st.integers(3, 60), st.sampled_from("AQgw-_"))
def test_an_altered_token_does_not_open(national, at, char):
    token = VAULT.seal(Phone(national)).token
    at = min(at, len(token) - 1)
    if token[at] == char:
        char = "B"
    with pytest.raises(PhoneError) as caught:
        VAULT.open(PhoneRef(token[:at] + char + token[at + 1:]))
    assert caught.value.code == "sealed"


def test_another_centres_key_or_token_does_not_open():
    phone = parse_phone("13912345678")
    ref = VAULT.seal(phone)
    with pytest.raises(PhoneError):
        PhoneVault(b"s" * 32, "centre-b").open(ref)  # same secret, other centre
    with pytest.raises(PhoneError):
        PhoneVault(b"t" * 32, "centre-a").open(ref)  # other secret
    assert PhoneVault(b"s" * 32, "centre-b").fingerprint(phone) != VAULT.fingerprint(phone)
    with pytest.raises(NoticeError):
        PhoneRef("13912345678")  # a clear number is no reference
    with pytest.raises(ValueError, match="16 bytes"):
        PhoneVault(b"short", "centre-a")


def test_a_notice_carries_no_clear_number_and_checks_its_fields():
    ref = VAULT.seal(parse_phone("13812345678"))
    texts = compose("called", ticket="A017", window=3, signature="某街道社区事务受理服务中心")
    n = Notice(notice_id("T-17", "called"), "T-17", "called", texts, ref, "zh-TW")
    assert "13812345678" not in repr(n)
    assert n.text == "【某街道社区事务受理服务中心】請A017號到3號窗口辦理業務。"
    assert notice_id("T-17", "called") == notice_id("T-17", "called")  # stable
    assert notice_id("T-17", "called", 1) != notice_id("T-17", "called")  # a recall
    with pytest.raises(NoticeError, match="kind"):
        Notice("x", "T-17", "lunch", texts, ref)  # type: ignore[arg-type]
    with pytest.raises(NoticeError, match="lang"):
        Notice("x", "T-17", "near", texts, ref, "fr")  # type: ignore[arg-type]
    with pytest.raises(NoticeError, match="recipient"):
        Notice("x", "T-17", "near", texts, "13812345678")  # type: ignore[arg-type]
    with pytest.raises(NoticeError, match="en"):
        Texts("请", "請", " ")
    with pytest.raises(NoticeError):
        notice_id("T:1", "near")
    with pytest.raises(NoticeError):
        compose("called", ticket="A017")  # no window
    with pytest.raises(NoticeError):
        compose("near", ticket="A017", ahead=-1)


def test_every_kind_has_words_in_three_languages():
    cases = [compose("near", ticket="A017", ahead=3, minutes=12),
             compose("called", ticket="A017", window=3),
             compose("booking_reminder", ticket="B005", day="2026-05-12", slot="09:30",
                     code="K7Q2"),
             compose("ready_for_pickup", ticket="A017", place="1号窗口")]
    for t in cases:
        assert len({t.zh_cn, t.zh_tw, t.en}) == 3
        assert t.en.isascii() or "1号窗口" in t.en
