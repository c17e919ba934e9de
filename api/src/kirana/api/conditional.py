"""Conditional reads (RFC 9110): a strong ETag over the exact body, If-None-Match answered with
304 and no payload. Shared by the routes whose answers come from a page cache (the catalog
listing, search) and by `catalog.edge`, which answers cached pages before routing with the
same headers, so a client cannot tell which of the two answered.
"""

from __future__ import annotations

import hashlib
from typing import Annotated

from fastapi import Header
from starlette.responses import Response

from kirana.api.inputs import Text

IfNoneMatch = Annotated[
    Text | None,
    Header(
        alias="If-None-Match",
        max_length=1_000,
        description="ETags from earlier answers (comma-separated; `*` matches any): 304 when one "
        "is the current one",
    ),
]


def etag(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def etag_matches(if_none_match: str | None, tag: str) -> bool:
    """RFC 9110 weak comparison of an If-None-Match header against our strong ETag."""
    if not if_none_match:
        return False
    candidates = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
    return "*" in candidates or tag in candidates


def etag_response(
    if_none_match: str | None, body: bytes, *, cache: str = "no-cache", tag: str | None = None
) -> Response:
    """200 with the JSON body, or 304 when If-None-Match names its ETag."""
    tag = tag or etag(body)
    headers = {"ETag": tag, "Cache-Control": cache}
    if etag_matches(if_none_match, tag):
        return Response(status_code=304, headers=headers)
    return Response(body, 200, headers, media_type="application/json")
