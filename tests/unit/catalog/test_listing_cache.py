"""The listing cache: reuse within the TTL, one query for concurrent misses, and no page computed
before an invalidation is ever stored."""

from __future__ import annotations

import asyncio

import pytest

from kirana.api.catalog.listing_cache import ListingCache


def _computer(calls: list[str], body: bytes, gate: asyncio.Event | None = None):  # type: ignore[no-untyped-def]
    async def compute() -> tuple[bytes, str]:
        calls.append(body.decode())
        if gate is not None:
            await gate.wait()
        return body, f'"{body.decode()}"'

    return compute


async def test_pages_are_reused_until_the_ttl_and_then_recomputed() -> None:
    cache = ListingCache(ttl_s=0.05)
    calls: list[str] = []
    first = await cache.get("sort=newest", _computer(calls, b"v1"))
    again = await cache.get("sort=newest", _computer(calls, b"v2"))
    assert (first.body, again.body, calls) == (b"v1", b"v1", ["v1"])
    await asyncio.sleep(0.06)
    later = await cache.get("sort=newest", _computer(calls, b"v2"))
    assert later.body == b"v2" and later.etag == '"v2"'


async def test_concurrent_misses_share_one_query() -> None:
    cache = ListingCache(ttl_s=10)
    calls: list[str] = []
    gate = asyncio.Event()
    tasks = [asyncio.create_task(cache.get("k", _computer(calls, b"page", gate))) for _ in range(20)]
    await asyncio.sleep(0)
    gate.set()
    pages = await asyncio.gather(*tasks)
    assert calls == ["page"] and {p.body for p in pages} == {b"page"}


async def test_a_page_computed_across_an_invalidation_is_not_stored() -> None:
    cache = ListingCache(ttl_s=10)
    calls: list[str] = []
    gate = asyncio.Event()
    slow = asyncio.create_task(cache.get("k", _computer(calls, b"old", gate)))
    await asyncio.sleep(0)
    cache.invalidate()  # a catalog write began while "old" was being read
    joined = await cache.get("k", _computer(calls, b"new"))  # does not join the older query
    gate.set()
    assert (await slow).body == b"old" and joined.body == b"new"
    assert (await cache.get("k", _computer(calls, b"newer"))).body == b"new"
    assert calls == ["old", "new"]


async def test_errors_reach_every_waiter_and_are_not_cached() -> None:
    cache = ListingCache(ttl_s=10)

    async def boom() -> tuple[bytes, str]:
        await asyncio.sleep(0)
        raise LookupError("no category")

    results = await asyncio.gather(*(cache.get("k", boom) for _ in range(3)), return_exceptions=True)
    assert all(isinstance(r, LookupError) for r in results)
    assert (await cache.get("k", _computer([], b"ok"))).body == b"ok"


@pytest.mark.parametrize(("ttl", "enabled"), [(0, False), (0.5, True)])
def test_a_zero_ttl_disables_the_cache(ttl: float, enabled: bool) -> None:
    assert ListingCache(ttl_s=ttl).enabled is enabled


async def test_nothing_is_served_or_stored_while_changes_are_not_followed() -> None:
    cache = ListingCache(ttl_s=10, followed=False)
    calls: list[str] = []
    assert (await cache.get("k", _computer(calls, b"v1"))).body == b"v1"
    assert cache.lookup("k") is None
    assert (await cache.get("k", _computer(calls, b"v2"))).body == b"v2"
    cache.followed = True
    await cache.get("k", _computer(calls, b"v3"))
    assert cache.lookup("k") is not None and cache.lookup("k").body == b"v3"  # type: ignore[union-attr]
    cache.followed = False  # the listener lost its connection: stored pages are not served
    assert cache.lookup("k") is None
    assert calls == ["v1", "v2", "v3"]


async def test_a_page_finished_after_following_stopped_is_not_stored() -> None:
    cache = ListingCache(ttl_s=10)
    gate = asyncio.Event()
    slow = asyncio.create_task(cache.get("k", _computer([], b"old", gate)))
    await asyncio.sleep(0)
    cache.followed = False
    gate.set()
    await slow
    cache.followed = True
    assert cache.lookup("k") is None


async def test_lookups_and_invalidations_are_counted_per_cache_for_prometheus() -> None:
    from prometheus_client import REGISTRY

    def sample(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    def lookups(result: str) -> float:
        return sample("kirana_page_cache_lookups_total", cache="unit", result=result)

    before = {r: lookups(r) for r in ("hit", "miss", "bypassed")}
    emptied = sample("kirana_page_cache_invalidations_total", cache="unit")
    cache = ListingCache(ttl_s=10, name="unit")
    calls: list[str] = []
    await cache.get("k", _computer(calls, b"page"))  # miss
    await cache.get("k", _computer(calls, b"page"))  # hit
    cache.lookup("k")  # the edge's hit
    cache.invalidate()
    cache.followed = False
    await cache.get("k", _computer(calls, b"page"))  # bypassed: changes are not followed
    after = {r: lookups(r) - before[r] for r in before}
    assert after == {"hit": 2, "miss": 1, "bypassed": 1}
    assert sample("kirana_page_cache_invalidations_total", cache="unit") - emptied == 1


def test_a_table_given_in_only_empties_only_its_caches_and_any_other_payload_empties_all() -> None:
    from kirana.api.catalog.invalidation import CatalogListener

    listing, found, suggest = (ListingCache(ttl_s=10, name=n) for n in ("listing", "search", "suggest"))
    listener = CatalogListener(
        "postgresql://unused", listing, found, suggest, only={"search_terms": (suggest,)}
    )

    def emptied() -> list[int]:
        return [c.invalidations for c in (listing, found, suggest)]

    listener.notified("search_terms")
    assert emptied() == [0, 0, 1]
    listener.notified("search_documents")
    assert emptied() == [1, 1, 2]
    listener.notified("fence-1")
    assert emptied() == [2, 2, 3] and listener.last_payload == "fence-1"
