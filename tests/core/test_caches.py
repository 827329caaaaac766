"""What a process keeps from prompt.json lives on its Root, bounded."""

from __future__ import annotations

import threading

import pytest

from farro_core import job, listing
from farro_core.lru import LRU
from farro_core.root import Root

from .helpers import spec


def test_the_listing_cache_is_bounded(root: Root, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(listing, "PARTS_CACHE", 3)
    ids = [job.create(root, spec(f"job {i}")).id for i in range(10)]
    rows = [listing.read_row(root, "incoming", i) for i in ids]
    assert [r.title for r in rows if r is not None] == [f"job {i}" for i in range(10)]
    assert len(root.cache("listing", 3)) == 3


def test_caches_belong_to_their_root(root: Root) -> None:
    env = job.create(root, spec("cached"))
    assert env.id in root.cache("prompts", job.PROMPT_CACHE)
    other = Root.open(root.path)  # another process, in effect: it reads the disk
    assert env.id not in other.cache("prompts", job.PROMPT_CACHE)
    assert job.load(other, env.id).prompt.prompt == "cached"
    root.drop_caches()
    assert env.id not in root.cache("prompts", job.PROMPT_CACHE)


def test_lru_put_from_many_threads_stays_bounded() -> None:
    lru: LRU[int, int] = LRU(50)

    def fill(base: int) -> None:
        for i in range(2000):
            lru.put(base + i, i)
            lru.hit(base + i // 2)

    threads = [threading.Thread(target=fill, args=(n * 10_000,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(lru) == 50


def test_lru_hit_marks_recent_use() -> None:
    lru: LRU[str, int] = LRU(2)
    lru.put("a", 1)
    lru.put("b", 2)
    assert lru.hit("a") == 1
    lru.put("c", 3)
    assert dict(lru) == {"a": 1, "c": 3}
    assert lru.hit("b") is None
