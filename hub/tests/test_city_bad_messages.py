"""What one centre sends the city may be anything (a bug, a device maker's own hub, an
attacker with a centre's credentials): the router forwards only a JSON object whose
centres check out, and drops anything else for good instead of retrying it forever; a
centre's hub drops what it cannot read, journals nothing for it and keeps its link. (A
body nested past the JSON parser's depth raised RecursionError, which neither caught: the
router retried such a message every second, forever.)"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from onewindow.hub.city import router
from onewindow.hub.city.features import (
    XCASE,
    XDOC,
    XDOCS,
    CityFeatures,
    CitySettings,
    json_object,
)
from onewindow.hub.store.files import FileStore

from .test_console_city import Hub

DEEP = b"[" * 100_000 + b"]" * 100_000
NOT_OBJECTS = [DEEP, b'{"a":' * 50_000 + b"1" + b"}" * 50_000, b"[1, 2]", b'"xcase"', b"null",
               b"7", b"\xff\xfe", b"", b"{"]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20)


@pytest.mark.parametrize("data", NOT_OBJECTS)
def test_a_body_that_is_not_a_json_object_is_a_value_error(data):
    with pytest.raises(ValueError):
        json_object(data)


@pytest.mark.parametrize("kind", [XCASE, XDOC, XDOCS])
@pytest.mark.parametrize("data", NOT_OBJECTS)
def test_the_router_drops_a_body_that_is_not_an_object(kind, data):
    """ValueError is the router's Drop: the message is terminated, not delivered again."""
    with pytest.raises(ValueError):
        router.targets(f"city.c05.{kind}", {"Ow-To": "c07"}, data)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(kind=st.sampled_from([XCASE, XDOC, XDOCS]),
       data=st.one_of(st.binary(max_size=200),
                      json_values.map(lambda v: json.dumps(v).encode())),
       to=st.sampled_from(["", "c07", "c05,c07", "c.7", "c07,,x"]))
def test_the_router_reads_any_message_or_raises_value_error(kind, data, to):
    try:
        sender, targets = router.targets(f"city.c05.{kind}", {"Ow-To": to}, data)
    except ValueError:
        return
    assert sender == "c05" and "c05" not in targets


class _Msg:
    def __init__(self, subject: str, data: bytes) -> None:
        self.subject, self.data = subject, data


async def test_a_centre_drops_what_it_cannot_read_and_journals_nothing(tmp_path):
    hub = Hub(tmp_path)
    try:
        features = CityFeatures(CitySettings(("nats://127.0.0.1:1",)), hub.runner,
                                FileStore(tmp_path / "files"), clock=lambda: hub.now)
        pos = hub.runner.app.pos
        for kind in (XCASE, XDOC, XDOCS, "catalog"):
            for data in NOT_OBJECTS:
                # True: acknowledged (dropped), not handed back for another delivery
                assert await features._take(_Msg(f"citydown.tap.{kind}", data)) is True
        assert hub.runner.app.pos == pos and features.arrived == 0
    finally:
        hub.close()
