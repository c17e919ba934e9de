"""Group commit for order placement: concurrent `POST /v1/orders` requests share transactions.

Used by the order edge (`orders.edge`, which hands it the requests it admits) and the app's
lifespan (made at startup, `stop` at shutdown).

Per order, the transaction around it (BEGIN, the key claim, the variant lock, the write, the
stored answer, COMMIT and its WAL flush) costs the database and the event loop more than the
order itself. So each API process keeps one queue of orders to place: whenever no batch is
running, the batcher takes everything queued (at most `max_batch`) and places it in one
transaction of two statements (three with the unpaid caps on), whatever the number of orders
(`_OPEN`, `_PLACE`):

0. when an unpaid-order cap is on, take the advisory locks of the batch's customers, in key
   order (`orders.unpaid.lock_keys`), so that another transaction placing for one of them (a
   request placed alone, another replica's batch) is done before the holdings are read;
1. claim every Idempotency-Key, lock the variants of all the orders in id order (as every
   writer of stock does), take an order number per request and read the transaction's time.
   A key already known (a retry) leaves the batch and is handled alone after it (replay, 409,
   422 or takeover, as `idempotency.deps` does); a key held by another transaction, or already
   in this batch, answers 409 at once, as a concurrent retry always does;
2. decide each order in turn against the stock the ones before it left (`orders.placement.
   allocate`): no overselling inside a batch either, and an order refused (out of stock,
   unknown SKU, price changed) costs the others nothing. Every answer is now known;
3. write every accepted order and store every answer under its key, refusals (409/422
   problem+json) included;
4. commit, then answer each request.

If the database refuses the values of one order in step 3 (a data exception, SQLSTATE class
22, or an integrity violation, class 23), the write is redone order by order inside the same
transaction, each in a savepoint: that order alone is answered (422 for a data exception; an
integrity violation sends it to be placed alone) and the others are placed in the batch as
before. If the transaction fails for any other reason, none of it stays and each of its orders is
placed alone, exactly as with batching off (`KIRANA_ORDER_BATCH_MAX=0`), so a batch can never
cost an order its answer. A request waits at most for the batch running when it arrived, then
its own; alone, with no batch running, it starts at once. Checkout of a cart and sync push
place their orders alone (they read and change a cart in the same transaction).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from kirana.api import errors, metrics, problems
from kirana.api.db import errors as db_errors
from kirana.api.db.engine import Database
from kirana.api.db.raw import Statement
from kirana.api.idempotency import service as idempotency
from kirana.api.idempotency.deps import JSON, problem_answer, success_answer
from kirana.api.orders import placement, sql
from kirana.api.stores import service as stores

log = logging.getLogger(__name__)


@dataclass(eq=False)
class _Ticket:
    order: placement.Placement
    request: idempotency.Request
    future: asyncio.Future[Response | None] = field(repr=False)


class BatchFailed(Exception):
    """A batch cannot answer one of its orders itself (its transaction is rolled back)."""


class OrderBatcher:
    def __init__(self, db: Database, *, max_batch: int, key_ttl: timedelta) -> None:
        self.db = db
        self.max_batch = max_batch
        self.key_ttl = key_ttl
        self._queue: deque[_Ticket] = deque()
        self._task: asyncio.Task[None] | None = None
        self._paused = 0
        self.batches = 0  # transactions committed
        self.largest = 0  # most orders in one of them
        self.fallbacks = 0  # transactions that failed (their orders were placed alone)

    @property
    def queued(self) -> int:
        return len(self._queue)

    async def place(self, order: placement.Placement, request: idempotency.Request) -> Response | None:
        """Place the order in the next batch: its answer (stored under the key), or None when it
        must be placed alone (a retry of a known key, or a failed batch). Raises KeyInUse."""
        future: asyncio.Future[Response | None] = asyncio.get_running_loop().create_future()
        self._queue.append(_Ticket(order, request, future))
        self._kick()
        return await future

    async def stop(self) -> None:
        """Finish the running batch; whatever is still queued is answered `None` (alone)."""
        self._paused += 1
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(self._task)
        while self._queue:
            ticket = self._queue.popleft()
            if not ticket.future.done():
                ticket.future.set_result(None)

    @contextlib.asynccontextmanager
    async def paused(self) -> AsyncIterator[None]:
        """Hold new batches back while inside (tests gather a batch with it)."""
        self._paused += 1
        try:
            yield
        finally:
            self._paused -= 1
            self._kick()

    def _kick(self) -> None:
        if self._task is not None or self._paused or not self._queue:
            return
        batch = [self._queue.popleft() for _ in range(min(self.max_batch, len(self._queue)))]
        self._task = asyncio.create_task(self._run(batch), name="order-batch")
        self._task.add_done_callback(self._done)

    def _done(self, _task: asyncio.Task[None]) -> None:
        self._task = None
        self._kick()

    async def _run(self, batch: list[_Ticket]) -> None:
        try:
            outcomes = await self._place_all(batch)
        except Exception:
            self.fallbacks += 1
            metrics.ORDER_BATCH_FALLBACKS.inc()
            log.warning("an order batch failed; placing its %d orders alone", len(batch), exc_info=True)
            outcomes = {ticket: None for ticket in batch}
        for ticket in batch:
            if ticket.future.done():  # the client went away; its answer is stored under its key
                continue
            outcome = outcomes[ticket]
            if isinstance(outcome, errors.KiranaError):
                ticket.future.set_exception(outcome)
            else:
                ticket.future.set_result(outcome)

    async def _place_all(self, batch: list[_Ticket]) -> dict[_Ticket, Response | errors.KiranaError | None]:
        outcomes: dict[_Ticket, Response | errors.KiranaError | None] = {}
        first: list[_Ticket] = []
        seen: set[tuple[str, str]] = set()
        for ticket in batch:
            owner_key = (ticket.request.owner, ticket.request.key)
            if owner_key in seen:
                outcomes[ticket] = idempotency.in_use()
            else:
                seen.add(owner_key)
                first.append(ticket)
        placements = [t.order for t in first]
        async with self.db.session() as session:
            unpaid = await placement.lock_holders(session, placements)
            (opened,) = await _OPEN.fetch(
                session,
                idempotency.claim_params([t.request for t in first], ttl=self.key_ttl)
                | {
                    "skus": placement.skus_of(placements),
                    "count": len(first),
                    "requested_stores": placement.requested_stores(placements),
                }
                | unpaid,
            )
            claims = idempotency.claims_of(_json(opened["claims"]))
            found = {row["sku"]: sql.locked_variant(row) for row in _json(opened["variants"]) or ()}
            numbers = iter(opened["numbers"])
            at: datetime = opened["at"]
            mine: list[tuple[_Ticket, idempotency.Claimed]] = []
            for ticket, claim in zip(first, claims, strict=True):
                if isinstance(claim, idempotency.Claimed):
                    mine.append((ticket, claim))
                else:
                    outcomes[ticket] = claim  # KeyInUse, or None: a known key, handled alone
            decided = placement.allocate(
                [t.order for t, _ in mine],
                found,
                open_stores=frozenset(opened["stores"]),
                unpaid_rows=_json(opened["unpaid"]) or (),
                unpaid_ip_rows=_json(opened["unpaid_ip"]) or (),
            )
            writes: list[_Write] = []
            refusals: list[idempotency.Answer] = []
            for (ticket, claim), verdict in zip(mine, decided, strict=True):
                if isinstance(verdict, errors.KiranaError):
                    if not idempotency.is_verdict(verdict):
                        raise BatchFailed(f"an order was refused with {verdict.status}")
                    problem = problems.problem_of(verdict, instance=ticket.request.path)
                    refusals.append(problem_answer(claim.id, verdict, problem))
                    outcomes[ticket] = problem
                else:
                    number = next(numbers)
                    body = placement.answer(verdict, number=number, at=at).model_dump_json().encode()
                    where = {"Location": placement.location(verdict.order_id)}
                    writes.append(_Write(ticket, verdict, number, success_answer(claim.id, 201, body, where)))
                    outcomes[ticket] = Response(body, 201, where, media_type=JSON)
            if len(writes) > 1:
                try:  # the whole batch in one statement; a savepoint keeps the rest if it fails
                    async with session.begin_nested():
                        await _write(session, writes, refusals)
                except Exception as exc:
                    if not db_errors.refuses_the_data(exc):
                        raise
                    log.warning(
                        "an order batch's write was refused (%s); writing its orders one by one",
                        db_errors.sqlstate(exc),
                    )
                    await _write_each(session, writes, refusals, outcomes)
            elif writes or refusals:
                await _write(session, writes, refusals)
        self.batches += 1
        if mine:
            self.largest = max(self.largest, len(mine))
            metrics.ORDER_BATCH_SIZE.observe(len(mine))
        return outcomes


@dataclass(eq=False)
class _Write:
    """An accepted order of the batch: what to write, and the answer to store under its key."""

    ticket: _Ticket
    order: placement.Accepted
    number: int
    answer: idempotency.Answer


async def _write(session: AsyncSession, writes: list[_Write], refusals: list[idempotency.Answer]) -> None:
    await _PLACE.fetch(
        session,
        placement.write_params([w.order for w in writes], [w.number for w in writes])
        | idempotency.answer_params([w.answer for w in writes] + refusals),
    )


async def _write_each(
    session: AsyncSession,
    writes: list[_Write],
    refusals: list[idempotency.Answer],
    outcomes: dict[_Ticket, Response | errors.KiranaError | None],
) -> None:
    """Write the orders one by one, each in a savepoint: an order the database refuses gets its
    own answer (422 for a data exception, stored under its key like any verdict; otherwise it
    is placed alone after the batch, its key released), and the others are placed as they were."""
    for w in writes:
        try:
            async with session.begin_nested():
                await _write(session, [w], [])
        except Exception as exc:
            if not db_errors.refuses_the_data(exc):
                raise
            refused = db_errors.as_invalid_input(exc)
            if refused is None:
                await _RELEASE.fetch(session, {"id": w.answer.claim_id})
                outcomes[w.ticket] = None
            else:
                problem = problems.problem_of(refused, instance=w.ticket.request.path)
                refusals.append(problem_answer(w.answer.claim_id, refused, problem))
                outcomes[w.ticket] = problem
    if refusals:
        await _write(session, [], refusals)


# The batch's statements. The first claims every key, locks the variants of every order (in
# id order), takes an order number for each request, reads which of the stores they name are
# open, what their customers' unpaid orders hold and how many unpaid orders their addresses
# hold, and reads the transaction's time, which
# becomes each order's creation time; so every answer is known before the second writes the
# accepted orders and stores all the answers.
_OPEN = Statement(
    text(
        f"""
    WITH {idempotency.CLAIM_CTES}, locked AS ({sql.LOCK_SELECT})
    SELECT (SELECT json_agg(json_build_object('id', id, 'got', got, 'claimed', claimed) ORDER BY ord)
            FROM claims) AS claims,
           (SELECT json_agg(locked) FROM locked) AS variants,
           ARRAY(SELECT nextval('order_number_seq') FROM generate_series(1, :count)) AS numbers,
           ARRAY({stores.ACTIVE_SELECT}) AS stores,
           (SELECT json_agg(u) FROM ({sql.UNPAID_SELECT}) u) AS unpaid,
           (SELECT json_agg(u) FROM ({sql.UNPAID_BY_IP_SELECT}) u) AS unpaid_ip,
           now() AS at
    """
    )
)
_PLACE = Statement(text(f"WITH {sql.WRITE_CTES}, {idempotency.COMPLETE_CTE} SELECT count(*) FROM placed"))
_RELEASE = Statement(text("DELETE FROM idempotency_keys WHERE id = :id"))


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str | bytes) else value
