"""view.py over Store objects directly: no terminal."""

from __future__ import annotations

from dataclasses import replace

from farro_core.listing import JobRow
from farro_tui.seed import FIXED_NOW
from farro_tui.store import ORDER_CACHE, Delta, Store
from farro_tui.view import ViewSpec, visible

ROW = JobRow(
    id="",
    queue="incoming",
    status="queued",
    title="",
    attempt=0,
    max_attempts=3,
    attempt_base=0,
    priority=0,
    timeout_s=60.0,
    revision=1,
    worker=None,
    claimed_at=None,
    created_at="2026-01-01T00:00:00Z",
    updated_at="2026-01-01T00:00:00Z",
    reason="",
    verdict=None,
)


def store_of(titles: dict[str, str]) -> Store:
    store = Store()
    rows: dict[str, JobRow | None] = {i: replace(ROW, id=i, title=t) for i, t in titles.items()}
    store.apply(Delta(names={"incoming": set(titles), "active": set(), "done": set()}, rows=rows))
    return store


def test_two_stores_with_the_same_generations_keep_their_own_ids() -> None:
    first = store_of({"JOBAAAAAAA01": "alpha", "JOBAAAAAAA02": "beta"})
    second = store_of({"JOBBBBBBBB01": "gamma", "JOBBBBBBBB02": "delta"})
    assert (first.names_generation, first.rows_generation) == (
        second.names_generation,
        second.rows_generation,
    )
    by_title = ViewSpec(sort="title")
    assert visible(first, by_title, FIXED_NOW) == ["JOBAAAAAAA01", "JOBAAAAAAA02"]
    assert visible(second, by_title, FIXED_NOW) == ["JOBBBBBBBB02", "JOBBBBBBBB01"]
    assert visible(first, by_title, FIXED_NOW) == ["JOBAAAAAAA01", "JOBAAAAAAA02"]


def test_the_caches_a_store_keeps_for_the_view_are_bounded() -> None:
    store = store_of({f"JOB{n:09d}": f"title {n}" for n in range(20)})
    for col in ("id", "title", "attempt", "worker", "verdict", "status", "age", "run") * 2:
        for reverse in (False, True):
            visible(store, ViewSpec(sort=col, reverse=reverse, filter="title"), FIXED_NOW)
    assert len(store.orders) <= ORDER_CACHE
    assert store.hays.maxsize < float("inf") and store.title_keys.maxsize < float("inf")
    assert len(store.hays) == 20


def test_lru_forgets_the_least_recently_used() -> None:
    from farro_core.lru import LRU

    lru: LRU[str, int] = LRU(2)
    lru.put("a", 1)
    lru.put("b", 2)
    lru.move_to_end("a")  # a hit
    lru.put("c", 3)
    assert dict(lru) == {"a": 1, "c": 3}
