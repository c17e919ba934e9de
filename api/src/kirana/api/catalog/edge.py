"""Answer anonymous listing, search and suggestion requests from their page caches before the
framework.

The public listing, search and suggestions (one request per keystroke) are the shop's hottest
reads. A request that FastAPI routes pays for query parsing and validation of a dozen
parameters, the dependency graph and the principal before the cache is even asked; here a
cached page costs a dictionary lookup. The middleware sits inside the request-context and CORS
middleware (request id, access log, metrics and CORS headers apply as to any route) and answers
only when the result cannot differ from the route's:

- a `GET` of one of the paths it is given (`/v1/catalog/products`, `/v1/search` and
  `/v1/search/suggest`, each with its own cache) without `include_unpublished` (staff views of
  drafts), either anonymous or with a
  bearer token that the access runtime accepts, the very check the route makes (signature,
  expiry, live session); any other `Authorization` header goes to the route, which answers 401
  as for any other request;
- the exact query string is already cached and fresh, which means the route validated it and
  computed the page (see `listing_cache`). Everything else, misses included, goes to the route,
  which fills the cache under the same key.

The answer is the route's: same body, strong ETag, `Cache-Control: no-cache`, and 304 when
If-None-Match matches.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from kirana.api.catalog.listing_cache import ListingCache
from kirana.api.conditional import etag_matches
from kirana.api.middleware import RouteLabel, authenticated

LISTING_PATH = "/v1/catalog/products"


def cache_key(scope: Scope) -> str:
    """The listing cache's key: the raw query string, exactly as the route stores it."""
    query: bytes = scope["query_string"]
    return query.decode("latin-1")


class CachedListingMiddleware:
    def __init__(self, app: ASGIApp, *, caches: dict[str, ListingCache]) -> None:
        self.app = app
        self.caches = {path: (cache, RouteLabel(path)) for path, cache in caches.items()}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and scope["path"] in self.caches:
            cache, route = self.caches[scope["path"]]
            query: bytes = scope["query_string"]
            if b"include_unpublished" not in query:
                page = cache.lookup(cache_key(scope), count=False)
                if page is not None:
                    headers = Headers(scope=scope)
                    authorization = headers.get("authorization")
                    inm = headers.get("if-none-match")
                    if authorization is None or await authenticated(scope, authorization):
                        cache.served()
                        scope["route"] = route
                        await self._answer(send, page.body, page.etag, inm)
                        return
        await self.app(scope, receive, send)

    @staticmethod
    async def _answer(send: Send, body: bytes, etag: str, if_none_match: str | None) -> None:
        headers = [(b"etag", etag.encode()), (b"cache-control", b"no-cache")]
        if etag_matches(if_none_match, etag):
            await send({"type": "http.response.start", "status": 304, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        headers += [(b"content-length", str(len(body)).encode()), (b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
