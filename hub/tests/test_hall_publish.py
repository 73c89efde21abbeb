"""The hall board's retained list (hub/app/boards.py hall_publish) is built from entries
checked and encoded once each; the message must be byte for byte what proto.encode makes of
the whole list, and refused (ProtocolError) wherever proto.encode refuses it."""

from __future__ import annotations

from collections import deque
from types import SimpleNamespace
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from onewindow.hub.app.boards import _call_json, hall_publish
from onewindow.hub.app.state import Call
from onewindow.protocol import ow_protocol as proto

calls = st.builds(
    Call,
    ticket=st.one_of(st.sampled_from(["A001", "B123", "Z999"]), st.text(max_size=300)),
    window=st.one_of(st.integers(1, 99), st.integers(-5, 2**54)),
    at=st.one_of(st.floats(1.7e9, 1.9e9), st.floats(allow_nan=True, allow_infinity=True)))


def _encoded(rev: Any, entries: list[Call]) -> bytes | type[proto.ProtocolError]:
    try:
        return proto.encode("hall", {"rev": rev, "calls": [
            {"ticket": c.ticket, "window": c.window, "ts": c.at} for c in entries]})
    except proto.ProtocolError:
        return proto.ProtocolError


@given(st.one_of(st.integers(0, 10**6), st.integers(-3, 2**54)), st.lists(calls, max_size=10))
def test_the_hall_message_is_proto_encodes_own(rev: int, entries: list[Call]) -> None:
    app: Any = SimpleNamespace(centre_id="c1", hall_rev=rev, calls=deque(entries))
    want = _encoded(rev, entries)
    try:
        got: bytes | type[proto.ProtocolError] = hall_publish(app).payload
    except proto.ProtocolError:
        got = proto.ProtocolError
    assert got == want


def test_the_same_call_is_encoded_once_and_listed_in_order() -> None:
    a, b = Call("A001", 1, 1.79e9), Call("A002", 2, 1.79e9 + 1.5)
    app: Any = SimpleNamespace(centre_id="c1", hall_rev=7, calls=deque([b, a]))
    first = hall_publish(app)
    app.hall_rev, app.calls = 8, deque([Call("A003", 3, 1.79e9 + 2), b, a])
    hits = _call_json.cache_info().hits
    second = hall_publish(app)
    assert _call_json.cache_info().hits == hits + 2  # a and b: not checked nor encoded again
    assert first.topic == second.topic == proto.hall_topic("c1") and second.retain
    assert [c["ticket"] for c in proto.decode("hall", second.payload)["calls"]] == \
        ["A003", "A002", "A001"]
    assert proto.decode("hall", first.payload)["rev"] == 7
