"""Text normalisation and word-overlap similarity, shared by prompt deduplication and the principle store; the one
sentence splitter (``pieces``, ``sentences``: the judges' rules, ``reflect.meta: cut``) and apostrophe straightening
the judges share; and ``before_repetition``, which cuts a looping answer where the loop begins (for training on cut
replay answers).

Two prompts or principles that differ only in case, punctuation, Unicode width or spacing are the same item: they get
the same id (``text_id``) and deduplicate by exact equality of ``normalize``. Near-duplicates (the same principle
reworded) are caught by ``jaccard`` on ``content_words``: lower-cased words with stopwords removed, a few common verbs
mapped to one synonym and a light suffix-stripping stemmer: cheap and explainable, with no model to download.
"""

from __future__ import annotations

import hashlib
import math
import re
import unicodedata
from collections.abc import Iterable

_WORD = re.compile(r"[^\W_]+")
#: Where a sentence (or clause, or line) ends: after ".", "!", "?", ";" or ":" and the spaces that follow, unless the
#: mark ends a list number ("1. Open it" stays one piece), or at line breaks.
_SENTENCE_END = re.compile(r"(?<=[.!?;:])(?<!\b\d[.)])(?<!\b\d\d[.)])\s+|\n+")
_LIST_MARKER = re.compile(r"^\s*(?:\d+[.)]|[-*\u2022])\s+")
_DANGLING_MARKER = re.compile(r"\n\s*(?:\d+[.)]|[-*\u2022])\s*$")  # a list item's number or bullet, nothing after
_CURLY_SINGLE = str.maketrans({"\u2018": "'", "\u2019": "'"})

#: Function words plus words every alignment principle shares ("assistant", "should"), which would otherwise make
#: all principles look alike.
STOPWORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been before being below between
    both but by can could did do does doing down during each either few for from further had has have having he her
    here hers him his how i if in into is it its itself just may me might more most must my neither no nor not now of
    off on once only or other ought our ours out over own same shall she should so some such than that the their them
    then there these they this those through to too under until up upon very was we were what when where whether which
    while who whom why will with within without would you your yours
    assistant assistants ai model models response responses respond answer answers user users reply replies always
    never ensure""".split()
)

#: Verbs principles use interchangeably, mapped (in all their forms) to one word so that rewordings meet.
_SYNONYM_GROUPS = (
    "give gives giving gave given provide provides providing provided share shares sharing shared supply supplies "
    "supplying supplied offer offers offering offered",
    "make makes making made build builds building built create creates creating created construct constructs "
    "constructing constructed produce produces producing produced",
    "refuse refuses refusing refused decline declines declining declined reject rejects rejecting rejected",
    "help helps helping helped assist assists assisting assisted aid aids aiding aided",
    "reveal reveals revealing revealed disclose discloses disclosing disclosed",
    "dangerous unsafe hazardous",
)
SYNONYMS = {word: group.split()[0] for group in _SYNONYM_GROUPS for word in group.split()}


def normalize(text: str) -> str:
    """Canonical form for equality: NFKC, case-folded, words only, single spaces."""
    return " ".join(_WORD.findall(unicodedata.normalize("NFKC", text).casefold()))


def straighten(text: str) -> str:
    """Curly single quotes (\u2018, \u2019) as the straight apostrophe: the judges' and the refusal count's patterns
    spell "can't" and "I'm" with "'", and models write either."""
    return text.translate(_CURLY_SINGLE)


def text_id(text: str, prefix: str = "p-") -> str:
    """A stable id for a piece of text: 12 hex digits of the SHA-256 of its normalised form.

    Texts with no word characters at all (e.g. "???") hash their stripped raw form instead, so they stay distinct.
    """
    key = normalize(text) or text.strip()
    return prefix + hashlib.sha256(key.encode("utf-8")).hexdigest()[:12]


def stem(word: str) -> str:
    """Strip a few English suffixes so that 'provides', 'providing' and 'provided' meet; short words are kept."""
    if word.endswith(("ss", "us", "is")):  # harmless, virus, analysis: not plurals
        return word
    for suffix in ("ingly", "ing", "edly", "ed", "ies", "es", "s", "ly"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            return word[: -len(suffix)] + ("y" if suffix == "ies" else "")
    return word


def content_words(text: str) -> frozenset[str]:
    """The stemmed, stopword-free word set of ``text``: what similarity and relevance are computed on."""
    words = normalize(text).split()
    return frozenset(stem(SYNONYMS.get(w, w)) for w in words if w not in STOPWORDS and not w.isdigit())


def jaccard(a: Iterable[str], b: Iterable[str]) -> float:
    """|A ∩ B| / |A ∪ B| of two word sets; 0.0 when both are empty."""
    a, b = set(a), set(b)
    union = a | b
    return len(a & b) / len(union) if union else 0.0


def overlap_cosine(a: Iterable[str], b: Iterable[str]) -> float:
    """|A ∩ B| / sqrt(|A| |B|): like Jaccard but not swamped when one text (a long prompt) is much larger."""
    a, b = set(a), set(b)
    return len(a & b) / math.sqrt(len(a) * len(b)) if a and b else 0.0


def pieces(text: str) -> list[str]:
    """``text`` cut where sentences and lines end (``_SENTENCE_END``), each piece with the spaces after it, so that
    ``"".join(pieces(t)) == t``: the one sentence splitter of the judges' rules, the cutting of a revision's talk
    about revising and the repetition cut below."""
    out, start = [], 0
    for end in _SENTENCE_END.finditer(text):
        out.append(text[start:end.end()])
        start = end.end()
    return [p for p in [*out, text[start:]] if p]


def sentences(text: str) -> list[str]:
    """The non-empty ``pieces`` of ``text``, stripped."""
    return [s for p in pieces(text) if (s := p.strip())]


def before_repetition(text: str, min_words: int = 4) -> str:
    """``text`` up to the first sentence or line that repeats an earlier one (``normalize``-equal once a list number
    or bullet is set aside; pieces of fewer than ``min_words`` words never count). What would be left introducing the
    cut part goes too: pieces ending in a colon ("3. **Seek help**:") and a dangling list marker. A small model cut
    off by its length limit has often fallen into a loop; its answer is worth training on only up to it."""
    seen: set[str] = set()
    parts = pieces(text)
    for i, piece in enumerate(parts):
        key = normalize(_LIST_MARKER.sub("", piece))
        if len(key.split()) < min_words:
            continue
        if key in seen:
            while i > 0 and parts[i - 1].rstrip().endswith(":"):
                i -= 1
            return _DANGLING_MARKER.sub("", "".join(parts[:i])).rstrip()
        seen.add(key)
    return text
