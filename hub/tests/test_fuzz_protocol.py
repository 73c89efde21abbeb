"""Property-based fuzzing (hypothesis) of `ow_protocol.decode` and `HubApp.handle` in this
process, with a real SQLite journal: mutated golden messages (a wrong type or an extreme
value in any field, fields dropped), NaN, truncations, deep nesting and random bytes.

decode: returns a message within every bound of the contract, or raises ProtocolError.
handle: never raises and never fails inside (no `err internal`); whatever it returns the
journal accepts; bad input changes neither the journal nor the state; a valid take still
works afterwards. The coverage-guided (atheris) and real-process runs are test_fuzz_hub.py.
"""

import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from onewindow.hub import config as hub_config
from onewindow.hub.runner import build_app
from onewindow.hub.store.journal import Journal
from onewindow.protocol import ow_protocol as proto
from onewindow.tools.testkit.testbed import default_devices, write_config

VECTORS = Path(proto.__file__).resolve().parent / "vectors"
VALID = [c for c in json.loads((VECTORS / "valid.json").read_text(encoding="utf-8"))
         if "message" in c]
EXTREME: list[object] = [
    2**53 - 1, 2**53, 2**63, 2**64, -1, 0, -(2**63), 1.0, 1.5, 1e300, float("nan"),
    float("inf"), True, False, None, "", "x" * 5000, [], {}]
CENTRE = "t1"

leaf_values = st.one_of(
    st.sampled_from(EXTREME), st.none(), st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70), st.floats(), st.text(max_size=300))
json_values = st.recursive(
    leaf_values,
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=8), inner,
                                                                  max_size=6),
    max_leaves=25)


def _field_names(kind: str, msg: dict[str, Any]) -> list[str]:
    names = set(msg) | {"v", "seq", "dev", "type", "window", "item", "items", "ts", "bmp",
                        "blocks", "calls", "score", "to_window", "taken_at", "number"}
    return sorted(names)


@st.composite
def mutated(draw: Any) -> tuple[str, bytes]:
    """(kind, payload): a golden message with some fields changed, dropped or added, then
    perhaps cut short; or bytes with no message in them at all."""
    shape = draw(st.sampled_from(["mutated", "mutated", "mutated", "truncated", "deep",
                                  "bytes"]))
    case = draw(st.sampled_from(VALID))
    kind, msg = case["kind"], dict(case["message"])
    if shape == "bytes":
        return kind, draw(st.binary(max_size=3000))
    if shape == "deep":
        n = draw(st.integers(min_value=1, max_value=3000))
        opener = draw(st.sampled_from(["[", '{"a": ']))
        inner = opener * n + ("1" if opener != "[" else "") + ("]" if opener == "[" else "}") * n
        return kind, json.dumps(msg)[:-1].encode() + b', "x": ' + inner.encode() + b"}"
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        name = draw(st.sampled_from(_field_names(kind, msg)))
        if draw(st.booleans()) and name in msg:
            del msg[name]
        else:
            msg[name] = draw(json_values)
    raw = json.dumps(msg).encode()  # NaN and Infinity come out as the bare tokens
    if shape == "truncated":
        raw = raw[:draw(st.integers(min_value=0, max_value=len(raw)))]
    return kind, raw


def _contract_fields(kind: str, msg: dict[str, Any]) -> dict[str, Any]:
    """The fields the contract states for this message (others are ignored by receivers);
    arrays of objects (`D`: fleet rows, a card's tickets) hold objects the hub makes, whose
    own fields the module does not check."""
    specs = list(proto._COMMON[kind])
    extra = {"evt": proto.EVENTS, "cmd": proto.COMMANDS, "ota": proto.OTA,
             "otareq": proto.OTAREQ}.get(kind)
    if extra is not None:
        specs += extra[msg["type"]]
    if kind == "res":
        specs += proto.RESULT
    return {name: msg[name] for name, typ, _ in specs if name in msg and typ != "D"}


def _within_bounds(value: Any) -> bool:
    """No NaN/Infinity, no int a JavaScript page would misread, anywhere in the message."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return True
    if isinstance(value, int):
        return -(2**53) < value < 2**53
    if isinstance(value, float):
        return value == value and abs(value) != float("inf")
    if isinstance(value, list):
        return all(_within_bounds(x) for x in value)
    return all(_within_bounds(x) for x in value.values())


@settings(max_examples=1500, deadline=None)
@given(mutated())
def test_decode_returns_a_bounded_message_or_raises_protocol_error(case):
    kind, payload = case
    try:
        msg = proto.decode(kind, payload)
    except proto.ProtocolError as e:
        assert e.code and e.msg and len(e.msg) <= proto.LONG
        return
    assert _within_bounds(_contract_fields(kind, msg)), msg
    assert proto.decode(kind, proto.encode(kind, dict(msg))) == msg  # it may leave again


def test_handle_survives_anything_and_bad_input_changes_nothing(tmp_path):
    devices = [*default_devices(2), {"id": "probe-1", "role": "box"}]
    cfg = write_config(tmp_path / "centre.toml", CENTRE, None, tmp_path / "hub.db", windows=2,
                       devices=devices)
    journal = Journal(f"sqlite:///{tmp_path / 'hub.db'}")
    app = build_app(hub_config.load(cfg), journal)
    clock = [1795395600.0]
    seen = {"bad": 0, "records": 0}

    @settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(mutated(), st.sampled_from(["box-1", "kp-1", "led-2", "ghost-1", "Box-1"]))
    def one(case, dev):
        kind, payload = case
        leaf = kind if kind in ("evt", "status", "ack") else "evt"
        if dev != "Box-1" and b'"dev"' in payload:  # mostly on the device's own topic
            payload = payload.replace(b'"box-1"', json.dumps(dev).encode(), 1)
        state, rows = app.centre.to_dict(), journal.last_pos()
        clock[0] += 1.0
        step = app.handle(f"ow/{CENTRE}/dev/{dev}/{leaf}", payload, clock[0])
        assert app.fleet.failures["internal"] == 0, "handle failed inside: see the log"
        journal.append(step.records)  # the real SQLite insert (2^63 once ended the hub here)
        try:
            proto.decode(leaf, payload)
        except proto.ProtocolError:
            seen["bad"] += 1
            assert step.records == [] and journal.last_pos() == rows
            assert app.centre.to_dict() == state
            assert all(p.topic.endswith("/err") for p in step.publishes)
        if not step.records:
            assert app.centre.to_dict() == state
        seen["records"] += len(step.records)

    one()
    assert seen["bad"] > 100  # the strategies do reach the refusals
    before = journal.last_pos()
    take = proto.encode("evt", proto.event("probe-1", 1, "take", item="SOC-001"))
    step = app.handle(proto.device_topic(CENTRE, "probe-1", "evt"), take, clock[0] + 1)
    journal.append(step.records)
    [res] = [proto.decode("res", p.payload) for p in step.publishes if p.topic.endswith("/res")]
    assert res["ticket"] and journal.last_pos() == before + 1
    journal.close()


def _depth(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max((_depth(x) for x in value), default=0)
    if isinstance(value, dict):
        return 1 + max((_depth(x) for x in value.values()), default=0)
    return 0


tricky_text = st.text(alphabet='[]{}"\\\\ab\u4e2d', max_size=12)
nested = st.recursive(
    st.one_of(st.integers(), tricky_text, st.booleans()),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(tricky_text, inner, max_size=3),
    max_leaves=40)


@settings(max_examples=1500, deadline=None)
@given(nested, st.lists(st.sampled_from(["list", "dict"]), max_size=12), tricky_text,
       st.booleans())
def test_the_depth_scan_agrees_with_the_parser(value, wrappers, key, ascii_only):
    """Brackets, quotes and backslashes inside strings never count; real nesting always does."""
    for w in wrappers:  # around the value, so depths on both sides of MAX_DEPTH come up
        value = [value, key] if w == "list" else {key: value}
    raw = json.dumps(value, ensure_ascii=ascii_only).encode()
    if _depth(value) > proto.MAX_DEPTH:
        try:
            proto.check_depth(raw)
        except proto.ProtocolError as e:
            assert e.code == "too_deep"
        else:
            raise AssertionError(f"{_depth(value)} deep, not refused: {raw!r}")
    else:
        proto.check_depth(raw)
