"""A new email or phone becomes a sign-in identifier only once it proves it receives messages
(a code sent to it), and the old address is told of the change (a review found any unused
address taken at once, and the old one never told)."""

from __future__ import annotations

from fastapi import FastAPI
from httpx import AsyncClient

from tests.integration.access.helpers import PASSWORD, login, make_user, step_up_with_password


def _code(text: str) -> str:
    return text.split(": ")[1][:6]


async def test_a_new_email_signs_in_only_after_its_code_and_the_old_one_is_told(
    client: AsyncClient, app: FastAPI
) -> None:
    email_box = app.state.access.notifier.email
    account = await login(client, await make_user(app))
    await step_up_with_password(client, account)
    old_email = account.email
    r = await client.patch("/v1/auth/me", headers=account.headers, json={"email": "victim@example.com"})
    assert r.status_code == 202, r.text
    assert r.json()["pending"] == ["email"]
    sent = email_box.sent[-1]
    assert sent.to == "victim@example.com"
    # Not proved yet: the new address signs nobody in, the old one still does.
    r = await client.post("/v1/auth/login", json={"identifier": "victim@example.com", "password": PASSWORD})
    assert r.status_code == 401
    me = (await client.get("/v1/auth/me", headers=account.headers)).json()
    assert me["email"] == old_email
    # A wrong code changes nothing; the right one makes the change and tells the old address.
    wrong = "000000" if _code(sent.text) != "000000" else "111111"
    r = await client.post(
        "/v1/auth/me/verify", headers=account.headers, json={"kind": "email", "code": wrong}
    )
    assert r.status_code == 422
    r = await client.post(
        "/v1/auth/me/verify", headers=account.headers, json={"kind": "email", "code": _code(sent.text)}
    )
    assert r.status_code == 200, r.text
    assert r.json()["email"] == "victim@example.com"
    told = email_box.sent[-1]
    assert told.to == old_email and "v***@example.com" in told.text
    r = await client.post("/v1/auth/login", json={"identifier": "victim@example.com", "password": PASSWORD})
    assert r.status_code == 200, r.text
    # The code is spent.
    r = await client.post(
        "/v1/auth/me/verify", headers=account.headers, json={"kind": "email", "code": _code(sent.text)}
    )
    assert r.status_code == 422


async def test_codes_are_rate_limited_and_wrong_codes_lock(client: AsyncClient, app: FastAPI) -> None:
    account = await login(client, await make_user(app))
    await step_up_with_password(client, account)
    for i in range(5):
        r = await client.patch("/v1/auth/me", headers=account.headers, json={"phone": f"+91984500100{i}"})
        assert r.status_code == 202, r.text
    r = await client.patch("/v1/auth/me", headers=account.headers, json={"phone": "+919845001009"})
    assert r.status_code == 429
    statuses = []
    for _ in range(6):
        r = await client.post(
            "/v1/auth/me/verify", headers=account.headers, json={"kind": "phone", "code": "999999"}
        )
        statuses.append(r.status_code)
    assert statuses == [422] * 5 + [429]
