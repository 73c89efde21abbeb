"""Live deltas (hub/web/livepatch.py): the operations `diff` gives turn the old snapshot into
the new one, for any JSON-like pair (hypothesis), and stay small for the changes live views
see (a queue's head called, a new call in front of the hall's list, one window's ticket)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from onewindow.hub.web.livepatch import LOOKAHEAD, MEMO_MIN, Memo, apply, diff

# No 0 or 1 beside the booleans: Python's == takes True for 1, and the diff compares
# containers with it (livepatch.same: a bool swapped for its int inside an otherwise equal
# container goes unseen); at the level of a single value it is seen (the test below).
scalars = (st.none() | st.booleans() | st.integers(2, 9) | st.floats(2.5, 3.5)
           | st.sampled_from(["a", "b", "ticket"]))
docs = st.recursive(scalars, lambda kids: st.lists(kids, max_size=6)
                    | st.dictionaries(st.sampled_from(["a", "b", "c", "calls", "n"]), kids,
                                      max_size=5), max_leaves=30)


def roundtrip(old: Any, new: Any) -> Any:
    """What a page holding `old` shows after the delta: the ops go over the wire as JSON."""
    ops = json.loads(json.dumps(diff(old, new)))
    return apply(copy.deepcopy(old), ops)


@settings(max_examples=400, deadline=None)
@given(docs, docs)
def test_a_delta_turns_any_old_snapshot_into_the_new_one(old, new):
    assert roundtrip(old, new) == new
    assert json.dumps(roundtrip(old, new)) == json.dumps(new)  # key order too


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 9), max_size=20), st.lists(st.integers(0, 9), max_size=20))
def test_lists_of_any_lengths_and_moves(old, new):
    assert roundtrip({"q": old}, {"q": new}) == {"q": new}


def test_equal_snapshots_give_no_operations():
    snap = {"a": [1, {"b": None}], "c": "x"}
    assert diff(snap, copy.deepcopy(snap)) == []


def test_a_bool_is_not_its_int():
    assert diff(1, True) == [["s", [], True]]
    assert diff({"a": 1, "n": 2}, {"a": True, "n": 3}) == [["s", ["a"], True],
                                                           ["s", ["n"], 3]]


def ticket(n: int) -> dict[str, Any]:
    return {"id": f"20261206-A{n:03d}", "number": f"A{n:03d}", "priority": "normal",
            "zh": "城乡居民养老保险参保登记", "waited_min": 0.1}


def test_a_called_head_and_a_new_tail_are_two_small_splices():
    old = {"queue": [ticket(n) for n in range(1, 51)], "now": 1.0}
    new = {"queue": [ticket(n) for n in range(2, 52)], "now": 1.25}
    ops = diff(old, new)
    assert roundtrip(old, new) == new
    assert ops == [["l", ["queue"], 0, 1, []], ["l", ["queue"], 49, 0, [ticket(51)]],
                   ["s", ["now"], 1.25]]


def test_a_new_call_in_front_of_the_hall_is_one_insertion():
    def call(n: int) -> dict[str, Any]:  # as the hall's snapshot lists them: by id
        return {"id": f"17965-A{n:03d}-{n % 30}", "ticket": f"A{n:03d}", "window": n % 30}

    calls = [call(n) for n in range(10, 2, -1)]
    old, new = {"calls": calls}, {"calls": [call(11), *calls[:-1]]}
    assert roundtrip(old, new) == new
    assert diff(old, new) == [["l", ["calls"], 0, 0, [call(11)]], ["l", ["calls"], 8, 1, []]]
    assert len(json.dumps(diff(old, new))) < len(json.dumps(new)) / 2


def test_one_window_changed_sends_that_window_only():
    names = [{"prefix": p, "zh": "社会保险", "en": "Social insurance"} for p in "ABCDEFGHJKLM"]
    windows = [{"number": n, "ticket": None, "served": 0, "line_names": names}
               for n in range(1, 31)]
    new = copy.deepcopy(windows)
    new[6]["ticket"], new[6]["served"] = "A087", 1
    ops = diff({"windows": windows}, {"windows": new})
    assert ops == [["s", ["windows", 6, "ticket"], "A087"], ["s", ["windows", 6, "served"], 1]]


def test_a_queue_moved_further_than_the_lookahead_is_one_splice():
    # 400 calls a second at 30 windows: between two builds of a console (0.25 s) its
    # queue's head moved by ~100, further than LOOKAHEAD: the rows are replaced by one
    # splice, not diffed field by field against tickets of other ids at their places
    old = {"queue": [ticket(n) for n in range(1, 51)]}
    far = {"queue": [ticket(n) for n in range(101, 151)]}
    assert diff(old, far) == [["l", ["queue"], 0, 50, far["queue"]]]
    part = {"queue": [ticket(n) for n in range(LOOKAHEAD + 12, LOOKAHEAD + 62)]}
    ops = diff(old, part)
    assert ops == [["l", ["queue"], 0, LOOKAHEAD + 11, []],
                   ["l", ["queue"], 50 - LOOKAHEAD - 11, 0, part["queue"][-(LOOKAHEAD + 11):]]]
    assert roundtrip(old, part) == part and roundtrip(old, far) == far


def test_a_moved_element_and_lost_ones_together():
    old = {"q": [ticket(n) for n in range(1, 21)]}
    new = {"q": [ticket(15), *(ticket(n) for n in range(4, 15)), *(ticket(n) for n in
                                                                  range(16, 25))]}
    assert roundtrip(old, new) == new
    assert len(json.dumps(diff(old, new))) < len(json.dumps(new)) / 2


def test_lists_shared_by_snapshots_are_diffed_once_for_all():
    # the clerk consoles alike: one queue object in each console's snapshot
    before = [ticket(n) for n in range(1, 51)]
    after = [ticket(n) for n in range(2, 52)]
    memo = Memo()
    a = diff({"window": 1, "queue": before}, {"window": 1, "queue": after}, memo)
    b = diff({"w": {"queue": before}}, {"w": {"queue": after}}, memo)  # elsewhere
    assert memo.hits == 1
    assert a == diff({"window": 1, "queue": before}, {"window": 1, "queue": after})
    assert b == diff({"w": {"queue": before}}, {"w": {"queue": after}})
    assert [op[1] for op in b] == [["w", "queue"], ["w", "queue"]]
    assert b[1][4] is a[1][4]  # the same items: serialised once (hub/web/live.py)
    # lists equal but other objects, or short ones, are diffed anew
    diff({"queue": before}, {"queue": list(after)}, memo)
    short = [1, 2]
    diff({"q": short}, {"q": [2]}, memo)
    diff({"q": short}, {"q": [2]}, memo)
    assert memo.hits == 1 and len(short) * 2 < MEMO_MIN


long_lists = st.lists(docs, min_size=MEMO_MIN // 2, max_size=MEMO_MIN)


@settings(max_examples=60, deadline=None)
@given(long_lists, long_lists, docs)
def test_a_memo_gives_each_snapshot_its_own_delta(old, new, other):
    # the same lists in three pairs of snapshots, under other paths: what the memo kept
    # from the first is the delta of the others, at their paths
    memo = Memo()
    pairs = [({"a": old, "b": other}, {"a": new, "b": other}),
             ({"x": {"y": old}}, {"x": {"y": new}}),
             ([old, new], [new, old])]
    for o, n in pairs:
        ops = json.loads(json.dumps(diff(o, n, memo)))
        assert apply(copy.deepcopy(o), ops) == n
        assert ops == json.loads(json.dumps(diff(o, n)))
    assert memo.hits >= (old != new)


@pytest.mark.parametrize("ops", [[["x", []]], [["s", "a", 1]]])
def test_a_malformed_delta_is_refused(ops):
    with pytest.raises(ValueError):
        apply({"a": 0}, ops)
