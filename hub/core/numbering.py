"""Ticket numbers: each line's prefix counts up through the day (A001, A002 ...), and
blocks reserved for button boxes (A901 ...) let a box print numbers of its own while it
cannot reach the hub; the offline ticket it later reports must carry one of them.
"""

from __future__ import annotations

from . import commands as c
from .effects import BlockReserved, Effect
from .rejected import Rejected
from .state import CentreState

OFFLINE_BASE = 901  # offline numbers per prefix start here: A901.. tells staff "offline"


def next_number(state: CentreState, prefix: str) -> str:
    """Today's next number for a hub-issued ticket."""
    n = state.counters.get(prefix, 0) + 1
    while f"{prefix}{n:03d}" in state.by_number or _reserved(state, prefix, n):
        n += 1  # a very busy day ran into the offline range: step over it
    state.counters[prefix] = n
    return f"{prefix}{n:03d}"


def _reserved(state: CentreState, prefix: str, n: int) -> bool:
    return any(a <= n <= b for dev in state.blocks.values()
               for a, b in dev.get(prefix, ()))


def offline_number(state: CentreState, cmd: c.TakeTicket, prefix: str, now: float
                   ) -> tuple[str, float]:
    """The number and time of an offline ticket, checked: from a block reserved today for
    its box, not issued yet, taken earlier today."""
    number = cmd.number or ""
    ranges = state.blocks.get(cmd.source or "", {}).get(prefix, [])
    digits = number[len(prefix):]
    if not (number.startswith(prefix) and digits.isdigit()
            and any(a <= int(digits) <= b for a, b in ranges)):
        raise Rejected("not_reserved", f"{number} is not in a block reserved today for "
                                       f"{cmd.source} (prefix {prefix})")
    if number in state.by_number:
        raise Rejected("duplicate_number", f"{number} was issued already today")
    taken = cmd.taken_at if cmd.taken_at is not None else now
    if taken > now or state.calendar.day_id(taken) != state.day:
        raise Rejected("bad_field", "taken_at must be earlier today")
    return number, taken


def reserve_block(state: CentreState, cmd: c.ReserveBlock, now: float) -> list[Effect]:
    """The operation `ReserveBlock`: a new block for each prefix whose unused numbers are
    half a block or fewer, numbered after the day's counter and every block given out."""
    if not 1 <= cmd.size <= 99:
        raise Rejected("bad_field", "a block holds 1-99 numbers")
    prefixes = {line.prefix for line in state.catalog.lines.values()}
    unknown = [p for p in cmd.prefixes if p not in prefixes]
    if unknown:
        raise Rejected("bad_field", f"unknown ticket prefixes {unknown}")
    mine = state.blocks.setdefault(cmd.device, {})
    changed = False
    for prefix in cmd.prefixes:
        ranges = mine.setdefault(prefix, [])
        unused = sum(1 for a, b in ranges for n in range(a, b + 1)
                     if f"{prefix}{n:03d}" not in state.by_number)
        if unused * 2 > cmd.size:
            continue  # enough left: the box keeps numbering where it is
        first = max(state.offline_next.get(prefix, OFFLINE_BASE),
                    state.counters.get(prefix, 0) + 1)
        ranges.append((first, first + cmd.size - 1))
        state.offline_next[prefix] = first + cmd.size
        changed = True
    return [BlockReserved(cmd.device)] if changed else []


def offline_blocks(state: CentreState, device: str) -> dict[str, list[list[int]]]:
    """The device's unused reserved numbers, as ranges: what its block command states."""
    out: dict[str, list[list[int]]] = {}
    for prefix, ranges in sorted(state.blocks.get(device, {}).items()):
        free = [[a, b] for a, b in ranges
                if any(f"{prefix}{n:03d}" not in state.by_number for n in range(a, b + 1))]
        if free:
            out[prefix] = free
    return out
