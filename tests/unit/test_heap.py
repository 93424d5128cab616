"""The start-up heap is frozen once per process, and the collector still frees cycles."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from app import heap


@pytest.fixture
def fresh_process(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(heap, "_frozen", False)
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


class Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: only the cyclic collector frees it


def test_start_up_objects_leave_the_collectors_sight(fresh_process: None) -> None:
    kept = Node()
    heap.freeze_startup_heap()
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == heap.THRESHOLDS
    before = gc.get_freeze_count()
    heap.freeze_startup_heap()  # a second app in the same process: nothing more frozen
    assert gc.get_freeze_count() == before
    assert kept.me is kept


def test_cycles_made_after_the_freeze_are_still_collected(fresh_process: None) -> None:
    heap.freeze_startup_heap()
    ref = weakref.ref(Node())
    gc.collect()
    assert ref() is None
