"""Search quality: mean NDCG@10 over the judged query set (`search_judgments`) on a generated
catalog, computed with ranx. The judgments come from what each product was generated from; the
run is what `GET /v1/search` returns. Prints the figure per query kind."""

from __future__ import annotations

import uuid
from collections import defaultdict

import pytest
from httpx import AsyncClient
from ranx import Qrels, Run, evaluate
from sqlalchemy import create_engine, text

from kirana.api.catalog import generate
from kirana.api.db.urls import sync_url
from kirana.api.settings import Settings
from tests.integration.search.search_judgments import QUERIES

PRODUCTS = 3000


def _catalog(settings: Settings) -> list[generate.Made]:
    engine = create_engine(sync_url(settings.database_url))
    try:
        with engine.begin() as conn:
            cats, brands = generate.ensure_taxonomy(conn)
            batch = generate.build(PRODUCTS, category_ids=cats, brand_ids=brands, seed=20261201)
            generate.insert(conn, batch)
            conn.execute(text("SELECT search_rebuild_terms()"))
    finally:
        engine.dispose()
    return [m for m in batch.made if m.published]


def test_the_judged_set_is_big_and_mixed() -> None:
    kinds = defaultdict(int)
    for q in QUERIES:
        kinds[q.kind] += 1
    assert len({q.q for q in QUERIES}) == len(QUERIES) >= 120
    assert kinds["hinglish"] + kinds["devanagari"] >= 30
    assert {"exact", "typo", "synonym", "brand", "category", "multi", "prefix"} <= set(kinds)


@pytest.mark.asyncio
@pytest.mark.timeout(1800)  # ranx compiles its metrics with numba on first use
async def test_mean_ndcg_at_10_is_at_least_0_9(client: AsyncClient, settings: Settings) -> None:
    made = _catalog(settings)
    qrels: dict[str, dict[str, int]] = {}
    run: dict[str, dict[str, float]] = {}
    for i, query in enumerate(QUERIES):
        qid = f"q{i}"
        judged = {str(m.product_id): g for m in made if (g := query.judge(m)) > 0}
        assert judged, f"no product in the catalog is relevant to {query.q!r}"
        qrels[qid] = judged
        r = await client.get("/v1/search", params={"q": query.q, "limit": 10})
        assert r.status_code == 200, r.text
        ids = [h["id"] for h in r.json()["items"]]
        run[qid] = {pid: float(10 - rank) for rank, pid in enumerate(ids)} or {str(uuid.uuid4()): 0.0}
    per_query = evaluate(Qrels(qrels), Run(run), "ndcg@10", return_mean=False)
    by_kind: dict[str, list[float]] = defaultdict(list)
    worst = sorted(zip(per_query, QUERIES, strict=True), key=lambda x: x[0])[:10]
    for score, query in zip(per_query, QUERIES, strict=True):
        by_kind[query.kind].append(float(score))
    mean = float(sum(per_query) / len(per_query))
    print(f"\nmean NDCG@10 = {mean:.4f} over {len(QUERIES)} queries")
    for kind, scores in sorted(by_kind.items()):
        print(f"  {kind:12s} {sum(scores) / len(scores):.4f} ({len(scores)})")
    print("  worst:", ", ".join(f"{q.q!r} {s:.2f}" for s, q in worst))
    assert mean >= 0.9
