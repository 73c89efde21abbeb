"""The hub's collection policy (hub/gcpolicy.py): survivors of a full collection are frozen
out of the next one's walk; garbage is still collected; a new day walks the whole heap once,
so cycles that died while frozen are freed. (Its pauses: tools/bench/bench_live.py,
bench_hub.py.)"""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Iterator

import pytest

from onewindow.hub.gcpolicy import Collector


class Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: only the collector frees it


@pytest.fixture
def day() -> Iterator[list[str]]:
    yield ["20261205"]
    gc.unfreeze()


def test_survivors_are_frozen_and_garbage_still_collected(day: list[str]) -> None:
    c = Collector(lambda: day[0])
    c.start()
    try:
        kept = Node()
        assert gc.is_tracked(kept)
        frozen = gc.get_freeze_count()
        gc.collect()
        assert c.full == 1 and gc.get_freeze_count() > frozen  # `kept` survived: frozen
        assert not any(o is kept for o in gc.get_objects(2))  # out of the next walk
        dropped = weakref.ref(Node())  # cyclic garbage made after the freeze
        gc.collect()
        assert dropped() is None and c.whole == 0
    finally:
        c.stop()
    assert c._after not in gc.callbacks


def test_a_new_day_frees_cycles_that_died_while_frozen(day: list[str]) -> None:
    c = Collector(lambda: day[0])
    c.start()
    try:
        node = Node()
        ref = weakref.ref(node)
        gc.collect()  # `node` survives: frozen
        del node
        gc.collect()
        assert ref() is not None  # frozen: not walked, not freed (the policy's cost)
        day[0] = "20261206"
        gc.collect()  # the first full collection of the new day unfreezes ...
        assert c.whole == 1 and gc.get_freeze_count() == 0
        gc.collect()  # ... so the next walks the whole heap and frees it
        assert ref() is None
        assert gc.get_freeze_count() > 0 and c.whole == 1  # and freezes again
    finally:
        c.stop()


def test_the_first_day_of_a_new_journal_walks_nothing_again(day: list[str]) -> None:
    day[0] = ""  # no day yet: nothing of a past day to free
    c = Collector(lambda: day[0])
    c.start()
    try:
        day[0] = "20261205"
        gc.collect()
        assert c.whole == 0 and gc.get_freeze_count() > 0
    finally:
        c.stop()


def _promote() -> list[Node]:
    """Objects that survive two collections: something in the oldest generation since the
    last full collection (what a burst of takes or connecting pages leaves)."""
    kept = [Node() for _ in range(100)]
    gc.collect(0)
    gc.collect(1)
    return kept


def test_a_calm_hub_collects_then_and_freezes_the_survivors(day: list[str]) -> None:
    c = Collector(lambda: day[0])
    c.start()

    async def scenario() -> None:
        handled = [0]
        calm = asyncio.create_task(c.collect_when_calm(lambda: handled[0], calm=0.01,
                                                       every=0.0))
        try:
            kept = _promote()
            frozen = gc.get_freeze_count()
            full = asyncio.Event()

            def seen(phase: str, info: dict[str, int]) -> None:
                if phase == "stop" and info["generation"] == 2 and c.calm:
                    full.set()

            gc.callbacks.append(seen)
            try:
                async with asyncio.timeout(10):
                    await full.wait()  # nothing here collects in full: the calm task does
            finally:
                gc.callbacks.remove(seen)
            assert c.calm >= 1 and gc.get_freeze_count() > frozen
            assert not any(o is kept[0] for o in gc.get_objects(2))
        finally:
            calm.cancel()

    try:
        asyncio.run(scenario())
    finally:
        c.stop()


def test_a_busy_hub_is_not_collected_by_the_calm_task(day: list[str]) -> None:
    c = Collector(lambda: day[0])
    c.start()

    async def scenario() -> None:
        looks = [0]
        enough = asyncio.Event()

        def activity() -> int:  # a message handled between every two looks
            looks[0] += 1
            if looks[0] >= 10:
                enough.set()
            return looks[0]

        calm = asyncio.create_task(c.collect_when_calm(activity, calm=0.001, every=0.0))
        try:
            _promote()
            async with asyncio.timeout(10):
                await enough.wait()
            assert c.calm == 0
        finally:
            calm.cancel()

    try:
        asyncio.run(scenario())
    finally:
        c.stop()
