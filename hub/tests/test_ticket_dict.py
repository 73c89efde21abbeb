"""Ticket.to_dict (what snapshots and the state comparisons are made of) is asdict's result,
converted for JSON, without asdict's cost: the same keys and values, and nothing in it shared
with the ticket, so a change to one cannot reach the other. The same for every command's
journal record (Command.to_record)."""

from __future__ import annotations

from dataclasses import MISSING, asdict, fields

# The modules defining commands outside commands.py, imported so that every subclass of
# Command is in `_commands()` whatever else the worker imported.
from onewindow.hub.app import admission  # noqa: F401
from onewindow.hub.core import city, notices, stations  # noqa: F401
from onewindow.hub.core import commands as cmds
from onewindow.hub.core.model import Priority, Ticket, TicketState
from onewindow.hub.sim import engine  # noqa: F401
from onewindow.hub.web import api  # noqa: F401


def _reference(t: Ticket) -> dict:
    d = asdict(t)
    d["priority"] = t.priority.value
    d["state"] = t.state.value
    d["extra_items"] = list(t.extra_items)
    d["history"] = [list(h) for h in t.history]
    d["returned"] = list(t.returned)
    return d


def _full() -> Ticket:
    """A ticket with every field set away from its default."""
    t = Ticket("20261123-A017", "A017", "2026-11-23", "SOC-001", list(Priority)[-1],
               1795395600.5, 1795395601.0, 17, extra_items=("MED-002", "SOC-003"),
               resident="9f2c1a7be04d55aa", appointment_at=1795396000.0, source="kiosk-1",
               request=12, window=2, target_window=3, requeued=True, recalls=2,
               note="n", review={"ok": ["SOC-001.1"], "missing": {"SOC-001.2": [1, 2]}},
               returned=("SOC-001.2",), returned_by="gh-1")
    t.mark(1795395700.0, TicketState.CALLED, 2)
    t.mark(1795395800.0, TicketState.SERVING, 2)
    return t


def test_to_dict_is_asdicts_and_shares_nothing_with_the_ticket():
    plain = Ticket("20261124-A001", "A001", "2026-11-24", "MED-002", Priority.NORMAL,
                   1.0, 1.0, 1)
    full = _full()
    same = {k for k, v in asdict(plain).items() if v == asdict(full)[k]}
    assert not same, f"set these away from their defaults in _full: {same}"
    for t in (plain, full):
        d = t.to_dict()
        assert d == _reference(t)
        assert list(d) == [f.name for f in fields(Ticket)]
        for name in d:  # every container is a copy (a new mutable field must be copied)
            if isinstance(d[name], list | dict | set):
                assert d[name] is not getattr(t, name), name
    d = full.to_dict()
    d["review"]["missing"]["SOC-001.2"].append(3)
    d["history"][0][0] = 0.0
    assert full.review == {"ok": ["SOC-001.1"], "missing": {"SOC-001.2": [1, 2]}}
    assert full.history[0][0] == 1795395700.0


def _commands() -> list[type[cmds.Command]]:
    out, todo = [], [cmds.Command]
    while todo:
        for sub in todo.pop().__subclasses__():
            # the package's commands, all imported above: the set must not depend on what
            # else a whole-suite worker happened to import first (a test's own subclass)
            if sub.__module__.startswith("onewindow.hub.") and ".tests." not in sub.__module__:
                out.append(sub)
            todo.append(sub)
    return sorted(set(out), key=lambda k: k.__name__)


def _value(hint: str) -> object:
    """A value of the annotated type, away from any default."""
    base = hint.replace(" | None", "").replace("None | ", "")
    if base.startswith("tuple"):
        return ("a", "b") if "str" in base else (1, 2)
    if base.startswith("dict"):
        return {"ticked": ["SOC-001.1"], "insisted": True}
    if base.startswith("list"):
        return ["a"]
    if base == "c.Command":  # a command wrapping another (the API's Attributed)
        return cmds.CallNext(3)
    return {"str": "x", "int": 7, "float": 1.5, "bool": True}[base]


def test_every_commands_record_is_asdicts():
    for k in _commands():
        hints = {f.name: f.type for f in fields(k)}
        every = k(**{name: _value(str(h)) for name, h in hints.items()})
        plain = k(**{f.name: _value(str(f.type)) for f in fields(k)
                     if f.default is MISSING and f.default_factory is MISSING})
        for cmd in (every, plain):
            # the shared part (some commands then drop or rename fields of it)
            record = cmds.Command.to_record(cmd)
            assert record == {**asdict(cmd), "op": k.op}, k.__name__
            assert list(record) == [*(f.name for f in fields(k)), "op"]
            for name, v in record.items():  # a container is a copy, as asdict's is
                if isinstance(v, dict | list | set):
                    assert v is not getattr(cmd, name), (k.__name__, name)
            cmd.to_record()
