"""What changed between two snapshots of a live view, as a list of operations a page applies.

A live feed (hub/web/live.py) sends a page its whole snapshot when it connects, then only
what changed: the supervisors' floor is ~35 KB of which a call changes a few hundred bytes
(the window's ticket and counts; the catalog's line names repeated per window do not move),
a clerk's console ~15 KB (its queue loses its head and gains a tail). The same operations
are computed once per change and sent to every page of the feed in sync; hub/web/static/
ow.js applies them (`ow.patch`), as `apply` does here (the tests' and the benchmark's
clients).

Operations, applied in order, each on the result of the ones before:

    ["s", path, value]               set: the value at path (a key of an object, an index
                                     of a list) becomes value; path [] replaces the whole
    ["d", path]                      delete: the key at path goes
    ["l", path, start, n, items]     splice: in the list at path, n elements from start are
                                     replaced by items (JavaScript's Array.splice)

Pure: no I/O, no clock. The snapshots are JSON-like (dicts with str keys, lists, str,
numbers, bool, None), as json.dumps sends them; tuples count as lists.
"""

from __future__ import annotations

from typing import Any

Op = list[Any]
# How far ahead a list's diff looks for an element that moved (one marked priority goes
# ahead): further moves are sent as changed elements. Elements lost or gained (a queue's
# head called, a hall's newest call in front) are found by their keys however far.
LOOKAHEAD = 8
# Lists at least this long together are remembered in a `Memo` (shorter ones cost less to
# diff than to look up).
MEMO_MIN = 16


class Memo:
    """Deltas of lists that several snapshots share (the same object in each: the queue
    of the clerk consoles alike, hub/web/console.py), computed once for all of them: by
    the identity of the old and the new list. It holds both, so that no id is reused
    while it lives: one pass of the live flusher."""

    __slots__ = ("got", "hits")

    def __init__(self) -> None:
        self.got: dict[tuple[int, int], tuple[Any, Any, list[Op], int]] = {}
        self.hits = 0


def diff(old: Any, new: Any, memo: Memo | None = None) -> list[Op]:
    """The operations that turn `old` into `new` (empty when they are equal)."""
    ops: list[Op] = []
    if not same(old, new):
        _diff(old, new, [], ops, memo)
    return ops


def same(a: Any, b: Any) -> bool:
    """Equal as the page sees them. Python's own comparison (in C: the diff runs on every
    change of every feed), except that a bool is not its int (json.dumps tells True from
    1; inside containers Python's == does not, and such a swap nested in an otherwise equal
    list or object goes unseen: no snapshot flips a field between the two)."""
    return a is b or (a == b and (type(a) is bool) == (type(b) is bool))


def _diff(a: Any, b: Any, path: list[Any], ops: list[Op], memo: Memo | None) -> None:
    """`a` and `b` differ: the operations at `path` that turn one into the other."""
    if isinstance(a, dict) and isinstance(b, dict):
        if list(a) != list(b) and [k for k in a if k in b] + [k for k in b if k not in a] \
                != list(b):  # set one by one, the keys would come in another order
            ops.append(["s", path, b])
            return
        for k, v in b.items():
            if k not in a:
                ops.append(["s", [*path, k], v])
            elif not same(w := a[k], v):
                _diff(w, v, [*path, k], ops, memo)
        for k in a:
            if k not in b:
                ops.append(["d", [*path, k]])
    elif isinstance(a, list | tuple) and isinstance(b, list | tuple):
        if memo is None or len(a) + len(b) < MEMO_MIN:
            _diff_list(a, b, path, ops, memo)
            return
        key = (id(a), id(b))
        got = memo.got.get(key)
        if got is None:
            start = len(ops)
            _diff_list(a, b, path, ops, memo)
            memo.got[key] = (a, b, ops[start:], len(path))
            return
        memo.hits += 1
        depth = got[3]
        for op in got[2]:  # the same operations, at this snapshot's path
            ops.append([op[0], [*path, *op[1][depth:]], *op[2:]])
    else:
        ops.append(["s", path, b])


def _key(x: Any) -> Any:
    """What an element of a list is known by across changes: a ticket's, a call's or a
    device's id, a window's number; a scalar itself; None for anything else."""
    if isinstance(x, dict):
        k = x.get("id")
        return x.get("number") if k is None else k
    return x if isinstance(x, str | int | float) or x is None else None


def _diff_list(a: list[Any] | tuple[Any, ...], b: list[Any] | tuple[Any, ...],
               path: list[Any], ops: list[Op], memo: Memo | None) -> None:
    """Both lists walked by their elements' keys: an element of the same key is diffed in
    place; a run of keys that the other list does not have (lost from `a`, gained in `b`:
    a queue's head called, however many) is one splice; an element that moved up to
    LOOKAHEAD places is a splice; anything else is diffed in place. Positions are those of
    the list as the operations before left it: everything before j is already `b`'s."""
    ka, kb = [_key(x) for x in a], [_key(x) for x in b]
    try:
        ina: set[Any] | None = set(ka)
        inb: set[Any] | None = set(kb)
    except TypeError:  # an id that is no scalar: such lists are walked by position
        ina = inb = None
    i = j = 0
    na, nb = len(a), len(b)
    while i < na and j < nb:
        if ka[i] == kb[j]:
            if not same(a[i], b[j]):
                _diff(a[i], b[j], [*path, j], ops, memo)
            i += 1
            j += 1
            continue
        if ina is not None and inb is not None:
            # keys the other list has not (None: an element known by no key, never)
            lost, gained = i, j
            while lost < na and ka[lost] is not None and ka[lost] not in inb:
                lost += 1
            while gained < nb and kb[gained] is not None and kb[gained] not in ina:
                gained += 1
            if lost > i or gained > j:
                ops.append(["l", path, j, lost - i, _items(b, j, gained)])
                i, j = lost, gained
                continue
        moved_out = moved_in = 0
        for d in range(1, LOOKAHEAD + 1):
            if i + d < na and ka[i + d] == kb[j]:
                moved_out = d
                break
            if j + d < nb and ka[i] == kb[j + d]:
                moved_in = d
                break
        if moved_out:
            ops.append(["l", path, j, moved_out, []])
            i += moved_out
        elif moved_in:
            ops.append(["l", path, j, 0, list(b[j:j + moved_in])])
            j += moved_in
        else:
            if not same(a[i], b[j]):
                _diff(a[i], b[j], [*path, j], ops, memo)
            i += 1
            j += 1
    if i < na or j < nb:
        ops.append(["l", path, j, na - i, _items(b, j, nb)])


def _items(b: list[Any] | tuple[Any, ...], start: int, end: int) -> list[Any]:
    """`b[start:end]` for a splice: `b` itself when that is all of it (a queue replaced
    whole: its JSON is then the snapshot's own, made once, hub/web/live.py Fragments)."""
    if start == 0 and end == len(b) and type(b) is list:
        return b
    return list(b[start:end])


def apply(doc: Any, ops: list[Op]) -> Any:
    """`doc` with `ops` applied (in place where it can be): what the page shows next."""
    for op in ops:
        kind, path = op[0], op[1]
        if not isinstance(path, list):
            raise ValueError(f"live patch: path {path!r} is not a list")
        if kind == "s" and not path:
            doc = op[2]
            continue
        parent = doc
        for key in path[:-1] if kind != "l" else path:
            parent = parent[key]
        if kind == "s":
            _put(parent, path[-1], op[2])
        elif kind == "d":
            del parent[path[-1]]
        elif kind == "l":
            start, n, items = op[2], op[3], op[4]
            parent[start:start + n] = items
        else:
            raise ValueError(f"live patch: unknown operation {kind!r}")
    return doc


def _put(parent: Any, key: Any, value: Any) -> None:
    if isinstance(parent, list) and key == len(parent):
        parent.append(value)
    else:
        parent[key] = value


def follow(state: Any, event: str, data: Any) -> Any:
    """What a page holds after an SSE event of a live feed: the event's data, or for a
    delta (event `patch`) the state before with its operations applied (in place)."""
    if event != "patch":
        return data
    if state is None:
        raise ValueError("live patch: a delta before any whole state")
    return apply(state, data["ops"])
