"""Keyword search over interaction subjects and notes, Chinese included, index-backed.

Two indexes serve a keyword, chosen by its length:

- 3 characters or more: a GIN trigram index (`pg_trgm`) on `search_text` (subject and
  notes, lower-cased) serves `LIKE '%keyword%'`. The database is initialised with the
  builtin C.UTF-8 locale provider, under which pg_trgm counts CJK characters as word
  characters, so `客户投诉` gives trigrams like any English word.
- 1 or 2 characters (`投诉`, `退`, `5G`): trigrams cannot serve them. `search_grams`
  holds, per row, every CJK character, every pair of adjacent characters of which at
  least one is CJK, and every Latin or digit word of one or two characters; a GIN index
  on that array serves `search_grams @> ARRAY[keyword]`. A short CJK keyword thus matches
  anywhere in the text; a short Latin keyword matches as a whole word ("AI", not the
  "ai" inside "email"), which is what a person typing two letters means.

Several words separated by spaces (`发票 抬头`) must all occur, each served as above.

The array costs about two entries per CJK character of a row: for subjects and notes of
a few hundred characters, a few hundred short strings, smaller than the trigram index.
"""

from __future__ import annotations

import re
import unicodedata

from services.runtime.storage.filters import escape_like

_CJK = re.compile(
    "[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\U00020000-\U0002ffff]"
)
_WORD = re.compile(r"[^\W_]+")
SHORT_KEYWORD = 3
"""Keywords shorter than this are looked up in `search_grams`, longer ones by trigrams."""


def normalise(text: str) -> str:
    """What is indexed and searched: NFKC (full-width letters become ASCII), lower case,
    runs of white space as one space."""
    return " ".join(unicodedata.normalize("NFKC", text).lower().split())


def search_text(subject: str, notes: str) -> str:
    return normalise(f"{subject} {notes}")


def search_grams(text: str) -> list[str]:
    """The short keys of a normalised text (see the module's description)."""
    grams: set[str] = set()
    for index, character in enumerate(text):
        if _CJK.match(character):
            grams.add(character)
            if index + 1 < len(text) and not text[index + 1].isspace():
                grams.add(text[index : index + 2])
            if index > 0 and not text[index - 1].isspace():
                grams.add(text[index - 1 : index + 1])
    for word in _WORD.findall(_CJK.sub(" ", text)):
        if len(word) < SHORT_KEYWORD:
            grams.add(word)
    return sorted(grams)


def keyword_clause(keyword: str) -> tuple[str, str]:
    """The SQL condition for one word of a search, its one parameter written `{}` (as
    `Where.add` takes it), and the parameter's value."""
    normalised = normalise(keyword)
    if len(normalised) < SHORT_KEYWORD:
        return "search_grams @> ARRAY[{}]::text[]", normalised
    return "search_text LIKE {} ESCAPE '\\'", f"%{escape_like(normalised)}%"


def keyword_clauses(keywords: str) -> list[tuple[str, str]]:
    """The conditions for a search of several words (`发票 抬头`): each word anywhere in
    the subject or notes, all of them in the same interaction, in any order."""
    return [keyword_clause(word) for word in normalise(keywords).split(" ") if word]
