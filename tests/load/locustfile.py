"""Kirana's load: weighted shopper journeys, a staged shape and thresholds checked at the end.

Run through `make load` (tests/load/run.py), which passes the settings below as environment:

| variable | meaning |
|---|---|
| `KIRANA_LOAD_SHAPE` / `_USERS` / `_DURATION_S` | the shape (tests/load/shapes.py), peak users, seconds |
| `KIRANA_LOAD_RAZORPAY_URL` | the fake Razorpay `kirana run` started; unset: shoppers cancel, not pay |
| `KIRANA_LOAD_SMS_URL` | the local SMS gateway `kirana run` started: its inbox gives the sign-up codes |
| `KIRANA_LOAD_RAZORPAY_WEBHOOK_SECRET` | webhook secret (+ `_KEY_ID`, `_KEY_SECRET`): webhook users |
| `KIRANA_LOAD_STAFF_USERS` / `_WEBHOOK_USERS` | fixed counts of staff / webhook users (0: weight) |
| `KIRANA_LOAD_OWNER` / `_PASSWORD` / `_PHONE` | who grants staff their role (default: the demo owner) |
| `KIRANA_LOAD_THRESHOLDS` | the limits file (default tests/load/thresholds.toml) |
| `KIRANA_LOAD_OUT` | where `verdict.json` (the threshold check) is written |
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import gevent
import websocket
from gevent.queue import Empty, Queue
from locust import HttpUser, LoadTestShape, between, events, task
from locust.env import Environment
from locust.runners import WorkerRunner

from tests.load import journeys, shapes, staff, thresholds, webhooks

log = logging.getLogger("kirana.load")
RAZORPAY = os.environ.get("KIRANA_LOAD_RAZORPAY_URL", "").rstrip("/")
SMS = os.environ.get("KIRANA_LOAD_SMS_URL", "").rstrip("/")
WEBHOOK_SECRET = os.environ.get("KIRANA_LOAD_RAZORPAY_WEBHOOK_SECRET", "")
RAZORPAY_KEY = (
    os.environ.get("KIRANA_LOAD_RAZORPAY_KEY_ID", ""),
    os.environ.get("KIRANA_LOAD_RAZORPAY_KEY_SECRET", ""),
)


class BrowserUser(HttpUser):
    """Anonymous browsing: most of the shop's traffic."""

    weight = 12
    wait_time = between(0.5, 2)

    def on_start(self) -> None:
        rng = random.Random()
        self.browser = journeys.Browser(self.client, rng, {"X-Forwarded-For": journeys.client_ip(rng)})
        self.browser.listing()

    @task(4)
    def listing(self) -> None:
        self.browser.listing()

    @task(4)
    def product(self) -> None:
        self.browser.product()

    @task(2)
    def search(self) -> None:
        self.browser.search()

    @task(2)
    def suggest(self) -> None:
        self.browser.suggest()


class MobileUser(HttpUser):
    """The mobile app of a new customer of this run: sync pull and push (tests/load/journeys.py)."""

    weight = 4
    wait_time = between(2, 5)

    def on_start(self) -> None:
        rng = random.Random()
        headers = {"X-Forwarded-For": journeys.client_ip(rng)}
        self.account = journeys.sign_up(self.client, headers, SMS)
        self.headers = headers
        self.app = journeys.MobileApp(self.client, rng, headers | journeys.auth(self.account))
        self.app.pull(full=True)

    @task(3)
    def pull(self) -> None:
        self._refresh()
        self.app.pull()

    @task(2)
    def push(self) -> None:
        self._refresh()
        self.app.push()

    def _refresh(self) -> None:
        if time.monotonic() - self.account.signed_in_at > 480:  # access tokens live 600 s
            journeys.sign_in(self.client, self.headers, self.account)
            self.app.headers = self.headers | journeys.auth(self.account)


class Notifications:
    """The shopper's app socket: subscribed to `user:<id>:orders`, frames kept in a queue by a
    reader greenlet so the journey can wait for its order's payment to be announced. As the
    app does, it reconnects when the server closes the socket (a drain's 1012, a missed
    heartbeat on a busy machine) and resumes the channel from the last message it saw (`since`),
    so no announcement is lost; each reconnect is reported as `ws: reconnect`."""

    RECONNECTS = 5  # tries per loss, 0.5 s apart and doubling

    def __init__(
        self,
        host: str,
        account: journeys.Account,
        headers: dict[str, str],
        fire: Callable[[str, float, Exception | None], None],
    ) -> None:
        parts = urlsplit(host)
        self.url = urlunsplit(("wss" if parts.scheme == "https" else "ws", parts.netloc, "/v1/ws", "", ""))
        self.account, self.headers, self.fire = account, headers, fire
        self.channel = f"user:{account.user_id}:orders"
        self.position: dict[str, Any] | None = None  # the last {epoch, seq} seen on the channel
        self.closed = False
        self.frames: Queue[dict[str, Any]] = Queue()
        self.ws = self._open()
        self.reader = gevent.spawn(self._read)

    def _open(self) -> websocket.WebSocket:
        ws = websocket.create_connection(
            self.url,
            subprotocols=["kirana.v1", f"bearer.{self.account.token}"],
            header=[f"{k}: {v}" for k, v in self.headers.items()],
            timeout=10,
            suppress_origin=True,  # a native app sends no Origin; a browser's would need allowing
        )
        subscribe: dict[str, Any] = {"op": "subscribe", "channel": self.channel}
        if self.position is not None:
            subscribe["since"] = self.position
        try:
            ws.send(json.dumps(subscribe))
            first = json.loads(ws.recv() or "{}")
            # `resync`: the gap is older than the history; the app refetches, then goes on
            if first.get("type") not in ("subscribed", "resync"):
                raise ConnectionError(f"not subscribed: {first}")
        except Exception:
            ws.shutdown()
            raise
        if not first.get("recovered"):  # a recovered one gives the head; the missed ones follow
            self._saw(first)
        return ws

    def _saw(self, frame: dict[str, Any]) -> None:
        if frame.get("channel") == self.channel and frame.get("epoch") and "seq" in frame:
            self.position = {"epoch": frame["epoch"], "seq": frame["seq"]}

    def _reconnect(self) -> bool:
        self.ws.shutdown()  # a closed socket's descriptor stays open until then
        delay = 0.5
        for _ in range(self.RECONNECTS):
            if self.closed:
                return False
            t0 = time.perf_counter()
            try:
                self.ws = self._open()
            except Exception as exc:
                self.fire("ws: reconnect", t0, exc)
                gevent.sleep(delay)
                delay *= 2
                continue
            self.fire("ws: reconnect", t0, None)
            return True
        return False

    def _read(self) -> None:
        while not self.closed:
            try:
                text = self.ws.recv()
            except websocket.WebSocketTimeoutException:
                continue
            except Exception:
                text = ""
            if not text:  # closed by the server or the network
                if not self._reconnect():
                    return
                continue
            frame = json.loads(text)
            self._saw(frame)
            self.frames.put(frame)

    def wait_paid(self, order_id: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                frame = self.frames.get(timeout=left)
            except Empty:
                return False
            data = frame.get("data") or {}
            if data.get("order_id") == order_id and (
                frame.get("type") == "payment.result" or data.get("to") == "paid"
            ):
                return True
        return False

    def close(self) -> None:
        self.closed = True
        self.reader.kill(block=False)
        try:
            self.ws.close()
        except Exception:
            log.debug("socket already closed")
        finally:
            self.ws.shutdown()


class ShopperUser(HttpUser):
    """A new customer of this run: signs up, then browses, fills a cart, checks out, pays
    through the fake Razorpay and waits for the socket to say the order is paid."""

    weight = 4
    wait_time = between(1, 3)

    def on_start(self) -> None:
        rng = random.Random()
        self.headers = {"X-Forwarded-For": journeys.client_ip(rng)}
        self.browser = journeys.Browser(self.client, rng, self.headers)
        self.account = journeys.sign_up(self.client, self.headers, SMS)
        self.socket: Notifications | None = None
        self._connect()

    def _connect(self) -> None:
        t0 = time.perf_counter()
        try:
            self.socket = Notifications(self.host or "", self.account, self.headers, self._fire_ws)
            exc = None
        except Exception as err:  # a refused socket is a failure of the step, not of the user
            self.socket, exc = None, err
        self._fire("WS", "ws: connect", t0, exc)

    def _fire_ws(self, name: str, t0: float, exc: Exception | None) -> None:
        self._fire("WS", name, t0, exc)

    def _fire(self, kind: str, name: str, t0: float, exc: Exception | None) -> None:
        self.environment.events.request.fire(
            request_type=kind,
            name=name,
            response_time=(time.perf_counter() - t0) * 1000,
            response_length=0,
            exception=exc,
            context={},
        )

    def on_stop(self) -> None:
        if self.socket is not None:
            self.socket.close()

    def _h(self) -> dict[str, str]:
        if time.monotonic() - self.account.signed_in_at > 480:  # access tokens live 600 s
            journeys.sign_in(self.client, self.headers, self.account)
        return self.headers | journeys.auth(self.account)

    @task
    def buy(self) -> None:
        self.browser.listing()
        line = None
        for _ in range(3):
            product = self.browser.product()
            if product and (line := journeys.in_stock_sku(product)):
                break
        if line is None:
            return
        r = self.client.post(
            "/v1/cart/lines", json={"sku": line[0], "quantity": 1}, headers=self._h(), name="cart: add line"
        )
        if not r.ok:
            return
        self.client.get("/v1/cart", headers=self._h(), name="cart: view")
        r = self.client.post(
            "/v1/checkout",
            json={},
            headers=self._h() | {"Idempotency-Key": str(uuid.uuid4())},
            name="checkout",
        )
        if not r.ok:
            return
        order_id = r.json()["id"]
        if not RAZORPAY:
            self.client.post(
                f"/v1/orders/{order_id}/transitions",
                json={"status": "cancelled"},
                headers=self._h(),
                name="order: cancel",
            )
            return
        self._pay(order_id)

    def _pay(self, order_id: str) -> None:
        r = self.client.post(f"/v1/orders/{order_id}/payments", headers=self._h(), name="pay: start")
        if not r.ok:
            return
        method = random.choice(["upi", "card"])
        paid = self.client.post(
            f"{RAZORPAY}/_dev/pay",
            json={"order_id": r.json()["razorpay_order_id"], "method": method},
            name="razorpay: customer pays",
        )
        if not paid.ok:
            return
        t0 = time.perf_counter()
        body = paid.json()
        if "razorpay_payment_id" in body and "error" not in body:
            journeys.PAID.append(str(body["razorpay_payment_id"]))
        v = self.client.post(
            "/v1/payments/verify",
            json={k: body[k] for k in ("razorpay_order_id", "razorpay_payment_id", "razorpay_signature")},
            headers=self._h(),
            name="pay: verify",
        )
        if not v.ok or self.socket is None:
            return
        ok = self.socket.wait_paid(order_id, timeout=10)
        self._fire("WS", "ws: order paid", t0, None if ok else TimeoutError("no paid frame within 10 s"))


class StaffUser(HttpUser):
    """A store manager of this run (tests/load/staff.py): moves paid orders on through the staff
    routes and refunds some delivered ones with a two-factor step-up. Needs the SMS inbox and an
    owner to grant the role (tests/load/staff.py `owner_known`); left out without them."""

    abstract = not (SMS and staff.owner_known())
    weight = 1
    fixed_count = int(os.environ.get("KIRANA_LOAD_STAFF_USERS", "0"))
    wait_time = between(0.5, 1.5)

    def on_start(self) -> None:
        rng = random.Random()
        self.rng = rng
        self.staff = staff.new_staff(self.client, {"X-Forwarded-For": journeys.client_ip(rng)}, SMS)

    @task
    def work(self) -> None:
        """The newest orders: refund a delivered one now and then, else move the furthest on."""
        r = self.client.get(
            "/v1/staff/orders", params={"limit": 50}, headers=self.staff.h(), name="staff: orders"
        )
        if not r.ok:
            return
        found: list[dict[str, Any]] = r.json()["items"]
        delivered = [o for o in found if o["status"] == "delivered"]
        if delivered and self.rng.random() < 0.5:
            self._refund(self.rng.choice(delivered)["id"])
            return
        order = staff.furthest(found)
        if order is None:
            return
        with self.client.post(
            f"/v1/orders/{order['id']}/transitions",
            json={"status": staff.NEXT[order["status"]]},
            headers=self.staff.h(),
            name="staff: move order",
            catch_response=True,
        ) as r:
            if r.status_code == 409:  # another staff member moved it first
                r.success()

    def _refund(self, order_id: str) -> None:
        self.staff.step_up()
        with self.client.post(
            f"/v1/orders/{order_id}/payments/refunds",
            json={"reason": "load: returned", "restock": True},
            headers=self.staff.h() | {"Idempotency-Key": str(uuid.uuid4())},
            name="staff: refund",
            catch_response=True,
        ) as r:
            if r.status_code == 409:  # refunded already (by another staff member)
                r.success()


class WebhookUser(HttpUser):
    """Razorpay's webhook deliveries for real payments of this run (tests/load/webhooks.py):
    signed with the run's secret, each event sent twice (same event id), all shuffled; the
    first copy must be `accepted`, the others `duplicate`."""

    abstract = not (RAZORPAY and WEBHOOK_SECRET and all(RAZORPAY_KEY))
    weight = 1
    fixed_count = int(os.environ.get("KIRANA_LOAD_WEBHOOK_USERS", "0"))
    wait_time = between(1, 3)

    def on_start(self) -> None:
        self.rng = random.Random()
        self.ledger = webhooks.Ledger()

    def _fetch(self, path: str, name: str) -> dict[str, Any] | None:
        r = self.client.get(f"{RAZORPAY}{path}", auth=RAZORPAY_KEY, name=name)
        data: dict[str, Any] | None = r.json() if r.ok else None
        return data

    @task
    def deliver(self) -> None:
        events: list[dict[str, Any]] = []
        for _ in range(3):
            if not journeys.PAID:
                break
            payment = self._fetch(f"/v1/payments/{journeys.PAID.popleft()}", "razorpay: fetch payment")
            if payment is None:
                continue
            order = self._fetch(f"/v1/orders/{payment['order_id']}", "razorpay: fetch order")
            events += webhooks.events_for(payment, order)
        for d in webhooks.deliveries(events, secret=WEBHOOK_SECRET, copies=2, rng=self.rng):
            repeat = d.event_id in self.ledger.seen
            with self.client.post(
                "/v1/webhooks/razorpay",
                data=d.body,
                headers=d.headers,
                name="webhook: duplicate" if repeat else "webhook: delivery",
                catch_response=True,
            ) as r:
                if r.status_code != 200:
                    r.failure(f"{r.status_code}")
                    continue
                wrong = self.ledger.judge(d.event_id, str(r.json().get("status")))
                if wrong:
                    r.failure(wrong)


class StagedShape(LoadTestShape):
    """The shape named by `KIRANA_LOAD_SHAPE` (tests/load/shapes.py). `stress` judges each step
    as it ends against the thresholds file's `[total]` error ratio and p95 (`[default]` p95 when
    `[total]` has none; a step with fewer than `[total]` `min_requests`, 10 unless set, is not
    judged) and stops at the first that breaks."""

    def __init__(self) -> None:
        super().__init__()
        global STRESS
        name = os.environ.get("KIRANA_LOAD_SHAPE", "smoke")
        self.stages = shapes.plan(
            name,
            users=int(os.environ.get("KIRANA_LOAD_USERS", "10")),
            duration_s=float(os.environ.get("KIRANA_LOAD_DURATION_S", "60")),
        )
        if name == "stress":
            limits = thresholds.load(_thresholds_path())
            STRESS = shapes.Stress(
                self.stages,
                max_error_ratio=limits.total.max_error_ratio or 0.01,
                p95_ms=limits.total.p95_ms or limits.default.p95_ms or 1000.0,
                min_requests=limits.total.min_requests or 10,
            )

    def tick(self) -> tuple[int, float] | None:
        if STRESS is None:
            return shapes.at(self.stages, self.get_run_time())
        assert self.runner is not None  # Locust sets it before the first tick
        total = self.runner.environment.stats.total
        now = shapes.Snapshot(total.num_requests, total.num_failures, dict(total.response_times))
        return STRESS.tick(self.get_run_time(), now)


STRESS: shapes.Stress | None = None


def _thresholds_path() -> Path:
    return Path(os.environ.get("KIRANA_LOAD_THRESHOLDS") or thresholds.DEFAULT_FILE)


@events.quitting.add_listener
def _check_thresholds(environment: Environment, **_: Any) -> None:
    """A breach of any limit makes the run exit 1; the verdict goes to `KIRANA_LOAD_OUT`."""
    if isinstance(environment.runner, WorkerRunner):
        return
    path = _thresholds_path()
    config = thresholds.load(path)
    stats = environment.stats

    def row(entry: Any, name: str) -> thresholds.Row:
        p95 = entry.get_response_time_percentile(0.95) if entry.num_requests else 0.0
        return thresholds.Row(name, entry.num_requests, entry.num_failures, float(p95 or 0.0))

    steps = [row(e, e.name) for e in stats.entries.values()]
    if STRESS is not None:  # a stress run is meant to break: where it did is its answer
        result = STRESS.result()
        breaches = [f"stress: broke at step {result['step']} ({result['users']} users): {result['reason']}"]
        breaches = breaches if result["broke"] else []
    else:
        result = None
        breaches = thresholds.check(config, steps, row(stats.total, "total"))
    for line in breaches:
        log.error("threshold breached: %s", line)
    if breaches and STRESS is None:
        environment.process_exit_code = 1
    out = os.environ.get("KIRANA_LOAD_OUT")
    if out:
        root = Path(__file__).resolve().parents[2]
        shown = path.resolve().relative_to(root) if path.resolve().is_relative_to(root) else path
        verdict: dict[str, Any] = {"thresholds": str(shown), "passed": not breaches, "breaches": breaches}
        if result is not None:
            verdict["stress"] = result
        Path(out, "verdict.json").write_text(json.dumps(verdict, indent=2) + "\n")
        # Also in the log: a run in a pod (charts/kirana-load) loses its files with the pod.
        log.info("verdict: %s", json.dumps(verdict))
