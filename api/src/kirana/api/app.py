"""The FastAPI application factory: `create_app(settings)` wires domains, middleware and errors.

Used by `kirana serve` (through `kirana.api.asgi:app`), the tests and the benchmarks.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.routing import APIRoute

from kirana.api import __version__, problems, redis, shutdown
from kirana.api.access import router as access
from kirana.api.access.runtime import AccessRuntime
from kirana.api.accounts import router as accounts
from kirana.api.audit import router as audit
from kirana.api.cart import router as cart
from kirana.api.catalog import router as catalog
from kirana.api.catalog.edge import LISTING_PATH, CachedListingMiddleware
from kirana.api.catalog.invalidation import CatalogListener
from kirana.api.catalog.listing_cache import ListingCache
from kirana.api.contract import document as contract
from kirana.api.db.engine import Database
from kirana.api.db.urls import libpq_url
from kirana.api.delivery import flows as delivery_flows
from kirana.api.delivery import router as delivery
from kirana.api.health import router as health
from kirana.api.loyalty import router as loyalty
from kirana.api.middleware import RequestContextMiddleware
from kirana.api.orders import placement
from kirana.api.orders import router as orders
from kirana.api.orders.batch import OrderBatcher
from kirana.api.orders.edge import BatchedOrderMiddleware
from kirana.api.payments import gateway as payments_gateway
from kirana.api.payments import router as payments
from kirana.api.realtime import router as realtime
from kirana.api.realtime.lifecycle import RealtimeRuntime
from kirana.api.search import router as search
from kirana.api.search.router import PATH as SEARCH_PATH
from kirana.api.search.router import SUGGEST_PATH
from kirana.api.settings import Settings
from kirana.api.sync import router as sync
from kirana.api.twofactor import router as twofactor

log = logging.getLogger("kirana.api")

QUIET_ROUTES = frozenset({"/livez", "/readyz"})


def freeze_startup_objects() -> None:
    """Keep what import and startup made (modules, ORM mappers, pydantic schemas, routes: long
    lived by nature) out of the collector's full passes.

    Every full (oldest-generation) collection walks every tracked object. Under order load these
    ran about once a second and each paused the event loop for about 70 ms, stalling every
    request on that process: the worst of the latency tail. Frozen, a full collection takes
    under 10 ms (`make bench only=commerce`). Objects made later are collected as usual, and
    shutdown unfreezes (`gc.unfreeze`), so an app started and stopped in-process leaks nothing.
    """
    gc.collect()
    gc.freeze()


def operation_id(route: APIRoute) -> str:
    """`orders.place`, not `place_v1_orders_post`: the route's first tag and its function name,
    so generated clients get readable method names (`openapi.json` `operationId`)."""
    tag = str(route.tags[0]) if route.tags else "shop"
    return f"{tag}.{route.name}"


def create_app(settings: Settings, *, handle_signals: bool = True) -> FastAPI:
    if not settings.database_url or not settings.redis_url:
        raise ValueError("the API needs KIRANA_DATABASE_URL and KIRANA_REDIS_URL (`kirana run` starts both)")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.draining = False
        app.state.db = Database(
            settings.db.url,
            pool_size=settings.db.pool_size,
            max_overflow=settings.db.max_overflow,
            statement_timeout_ms=settings.db.statement_timeout_ms,
            hot_pool_size=settings.db.hot_pool_size,
        )
        app.state.redis = redis.connect(
            settings.redis_url,
            max_connections=settings.redis_max_connections,
            wait_s=settings.redis_pool_wait_s,
        )
        app.state.access = AccessRuntime(settings, app.state.db, app.state.redis)
        batcher = None
        if settings.order_batch_max:
            ttl = timedelta(hours=settings.idempotency_ttl_hours)
            batcher = OrderBatcher(app.state.db, max_batch=settings.order_batch_max, key_ttl=ttl)
        app.state.order_batcher = batcher
        await app.state.access.start()
        authorizers = {"delivery": delivery_flows.channel_authorizer(app.state.db)}
        app.state.realtime_runtime = RealtimeRuntime(settings, app.state, authorizers=authorizers)
        await app.state.realtime_runtime.start()
        listener = CatalogListener(
            libpq_url(settings.database_url),
            *app.state.page_caches,
            only={"search_terms": (app.state.suggest_cache,)},  # the weight rebuild's table
        )
        app.state.catalog_listener = listener
        if listener.wanted:
            await listener.start()
        if handle_signals:
            shutdown.install_drain_handler(app.state, drain_seconds=settings.drain_seconds)
        freeze_startup_objects()
        log.info("started", extra={"version": __version__, "environment": settings.environment.value})
        try:
            yield
        finally:
            gc.unfreeze()
            await app.state.realtime_runtime.stop()
            await listener.stop()
            if batcher is not None:
                await batcher.stop()
            await app.state.access.stop()
            await app.state.redis.aclose()
            await app.state.db.dispose()
            log.info("stopped")

    app = FastAPI(
        title="Kirana",
        version=__version__,
        summary="An e-commerce platform for the Indian market",
        lifespan=lifespan,
        docs_url="/docs" if settings.docs_mode == "ui" else None,
        openapi_url=None if settings.docs_mode == "off" else "/openapi.json",
        redoc_url=None,
        generate_unique_id_function=operation_id,
    )
    app.state.settings = settings
    app.state.payments_gateway = payments_gateway.Gateway(payments_gateway.config_from(settings))
    listing_cache = ListingCache(settings.catalog_listing_cache_s, followed=False)
    app.state.catalog_listing_cache = listing_cache
    search_cache = ListingCache(settings.search_cache_s, name="search", followed=False)
    app.state.search_cache = search_cache
    suggest_cache = ListingCache(settings.search_cache_s, name="suggest", followed=False)
    app.state.suggest_cache = suggest_cache
    app.state.page_caches = (listing_cache, search_cache, suggest_cache)  # what a catalog write empties
    problems.install_handlers(app)
    contract.install(app)
    app.include_router(health.router)
    app.include_router(payments.hooks)  # high-volume machine traffic: matched before the rest
    app.include_router(accounts.router)
    app.include_router(accounts.wellknown)
    app.include_router(twofactor.router)
    app.include_router(access.router)
    app.include_router(audit.router)
    for domain in (catalog, cart, orders, payments, search, sync, loyalty, delivery):
        app.include_router(domain.router)
    app.include_router(realtime.router)
    app.include_router(realtime.docs)

    app.add_middleware(BatchedOrderMiddleware, policy=placement.policy_from(settings))
    edge_caches = {LISTING_PATH: listing_cache, SEARCH_PATH: search_cache, SUGGEST_PATH: suggest_cache}
    app.add_middleware(CachedListingMiddleware, caches=edge_caches)  # inside CORS and context
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=["X-Request-ID", "ETag", "Retry-After", "Idempotent-Replayed"],
        )
    app.add_middleware(
        RequestContextMiddleware, max_body_bytes=settings.max_body_bytes, skip_metrics=QUIET_ROUTES
    )
    return app
