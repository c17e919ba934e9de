"""The pure half of a search: words out of what a shopper typed, the typo allowance, and the
tsquery text built from the expanded words. No I/O; `search.service` calls it around the one
statement that looks words up (`service.expand`).

Words are runs of letters and digits (Latin, Devanagari and the other Indic blocks); everything
else, including the tsquery and LIKE metacharacters `& | ! : * ( ) ' \\ % _` and emoji, only
separates words. The folded words that reach `tsquery` have passed `search_fold` in the database
and are stripped here to letters and digits again, and each is quoted as a lexeme, so no input
can make `to_tsquery` fail.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

MAX_QUERY_CHARS = 200
MAX_WORDS = 8
MAX_WORD_CHARS = 40

_WORD = re.compile(r"(?:[^\W_]|[\u0900-\u0DFF])+")
_LEXEME_DROP = re.compile(r"[^0-9a-z\u00c0-\u024f\u0900-\u0dff]+")


def words(q: str) -> list[str]:
    """The words of a query, lower case, at most MAX_WORDS of at most MAX_WORD_CHARS each."""
    return [w[:MAX_WORD_CHARS] for w in _WORD.findall(q.lower())][:MAX_WORDS]


def typo_allowance(word: str) -> int:
    """Meilisearch's rule: no typo below 5 characters, one from 5, two from 9."""
    n = len(word)
    return 0 if n < 5 else 1 if n < 9 else 2


def lexeme(word: str) -> str | None:
    clean = _LEXEME_DROP.sub("", word)
    return f"'{clean}'" if clean else None


@dataclass(frozen=True)
class Concept:
    """One thing the shopper asked for: any of its alternatives satisfies it."""

    words: tuple[str, ...]  # the folded query word(s) it came from
    synonyms: tuple[str, ...] = ()  # folded; a synonym of several words is a phrase
    typos: tuple[str, ...] = ()  # known words within the allowance, only for unknown words
    prefix: bool = False  # the last word as typed so far

    def alternatives(self, *, typos: bool, prefix: bool) -> list[str]:
        out: list[str] = []
        for term in (" ".join(self.words), *self.synonyms):
            parts = [lx for lx in (lexeme(w) for w in term.split()) if lx]
            if parts:
                out.append(parts[0] if len(parts) == 1 else "(" + " <-> ".join(parts) + ")")
        if prefix and self.prefix and len(self.words) == 1:
            lx = lexeme(self.words[0])
            if lx:
                out.append(lx + ":*")
        if typos:
            out += [lx for lx in (lexeme(w) for w in self.typos) if lx]
        return list(dict.fromkeys(out))


@dataclass(frozen=True)
class Lookup:
    """What the database knows of one folded word or adjacent pair (`service.expand`)."""

    known: bool = False
    known_prefix: bool = False
    synonyms: tuple[str, ...] = ()
    typos: tuple[str, ...] = ()


@dataclass(frozen=True)
class Plan:
    concepts: tuple[Concept, ...] = field(default_factory=tuple)

    def tsquery(self, *, typos: bool = True, prefix: bool = True, any_word: bool = False) -> str:
        parts = []
        for c in self.concepts:
            alts = c.alternatives(typos=typos, prefix=prefix)
            if alts:
                parts.append("(" + " | ".join(alts) + ")")
        return (" | " if any_word else " & ").join(parts)

    def phrase(self) -> str:
        """All the words in their order, next to each other (a bonus when it matches)."""
        lexemes = [lexeme(w) for c in self.concepts for w in c.words]
        kept = [lx for lx in lexemes if lx]
        return " <-> ".join(kept) if len(kept) > 1 else ""


def plan(folded: list[str], lookups: dict[str, Lookup], *, last_is_prefix: bool) -> Plan:
    """Concepts from the folded words: an adjacent pair that is a synonym ("wheat flour") is one
    concept; a word gets typo alternatives only when it is neither a known word, nor (as the
    last word) the start of one, nor a synonym."""
    concepts: list[Concept] = []
    i = 0
    while i < len(folded):
        if i + 1 < len(folded):
            pair = f"{folded[i]} {folded[i + 1]}"
            found = lookups.get(pair)
            if found and found.synonyms:
                concepts.append(
                    Concept((folded[i], folded[i + 1]), tuple(s for s in found.synonyms if s != pair))
                )
                i += 2
                continue
        w = folded[i]
        found = lookups.get(w, Lookup())
        last = last_is_prefix and i == len(folded) - 1
        exact = found.known or found.synonyms or (last and found.known_prefix)
        concepts.append(
            Concept(
                (w,),
                tuple(s for s in found.synonyms if s != w),
                () if exact else found.typos,
                prefix=last,
            )
        )
        i += 1
    return Plan(tuple(concepts))
