"""The audit hash chain: it verifies, and every kind of tampering is found."""

from __future__ import annotations

import copy

from kirana.api.audit import chain


def _chain(n: int) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    prev = chain.GENESIS
    for i in range(1, n + 1):
        row: dict[str, object] = {
            "id": i,
            "seq": i,
            "action": "auth.login",
            "outcome": "ok",
            "after": {"n": i},
        }
        row["prev_hash"] = prev
        row["hash"] = prev = chain.entry_hash(prev, row)
        rows.append(row)
    return rows


def test_chain_verifies_and_finds_each_kind_of_tampering() -> None:
    rows = _chain(5)
    assert chain.verify(rows).ok and chain.verify(rows).head_seq == 5
    edited = copy.deepcopy(rows)
    edited[2]["after"] = {"n": 99}
    assert [f.seq for f in chain.verify(edited).findings] == [3]
    deleted = rows[:2] + rows[3:]
    assert {f.seq for f in chain.verify(deleted).findings} == {4}
    inserted = copy.deepcopy(rows[:3])
    fake: dict[str, object] = {
        "id": 99,
        "seq": 4,
        "action": "x",
        "outcome": "ok",
        "prev_hash": rows[2]["hash"],
    }
    fake["hash"] = chain.entry_hash(str(rows[2]["hash"]), fake)  # a forger who knows the algorithm...
    inserted += [fake] + copy.deepcopy(rows[3:])
    # ...still breaks the link to the next genuine entry and the seq order.
    assert not chain.verify(inserted).ok
