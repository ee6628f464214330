"""When does a new principle restate a stored one? Same polarity, then the same subject, then enough shared words.

Word overlap alone merges opposite rules ("should never provide X" / "should always provide X" share every content
word) and rules about different harms in the same frame ("instructions for making explosives" / "... making
methamphetamine"). So two principles are compared in three steps:

1. **Polarity.** ``restrict`` (the rule forbids: "should not", "never", "refuse to", "avoid", "decline", "give no")
   or ``permit`` (it asks the assistant to do something). It is read from the main clause (the first clause with a
   modal such as *should* or *must*, else the first clause, so an imperative "Never ..." works): starting at the
   modal, each negation (*not, never, no, n't, cannot*) and each refusal verb (*refuse, decline, reject, avoid,
   refrain, withhold, abstain*) flips it, until the first other content word (the main verb); a *no* right after
   that verb ("give no advice") flips it once more. So "never refuse to answer X" permits, "requests for X should be
   declined" restricts. Principles of different polarity are never duplicates; a principle whose ``kind`` is known
   passes it instead of having it inferred.
2. **Subject.** The *topic words* are the content words minus a frame shared by most principles (provide,
   instructions, information, harmful, illegal, ...). When either principle has topic words, their Jaccard
   similarity bounds the score, so rules about different harms in one frame stay apart, and a specific rule is not
   absorbed by a generic one.
3. **Wording.** Jaccard similarity of all content words (``iteralign.text.content_words``: stopwords removed,
   common verbs mapped to one synonym, light stemming), after British spellings and hyphens are evened out and the
   refusal verbs (carried by the polarity) are dropped.

The score is ``min(wording, subject)``; the store treats a score at or above ``propose.similarity_threshold`` (0.6)
as a restatement. BENCHMARKS.md ("Principle deduplication") measures this on ``tests/data/principle_pairs.jsonl``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from iteralign.text import STOPWORDS, content_words, jaccard, normalize

Polarity = Literal["restrict", "permit"]


def _root(word: str) -> str:
    """A final silent 'e' dropped, so that the stemmer's "forg" (forging) meets "forge"."""
    return word[:-1] if word.endswith("e") and len(word) > 4 else word


def _roots(text: str) -> frozenset[str]:
    return frozenset(_root(w) for w in content_words(text))


NEGATIONS = frozenset({"not", "never", "no", "t", "cannot", "nor", "neither"})  # "t": the tail of "don't" etc.
#: Verbs whose meaning is "do not" (and their forms), normalised as ``content_words`` normalises them.
REFUSAL_VERBS = _roots(
    "refuse decline reject avoid avoids avoiding avoided refrain refrains refraining refrained withhold withholds "
    "withholding withheld abstain abstains abstaining abstained"
)
_MODALS = frozenset(
    """should must shall will would can could may might ought need needs shouldn mustn wouldn couldn won cannot don
    doesn didn isn aren""".split()
)
#: Words between the modal and the main verb that carry no polarity ("should always politely refuse").
_FILLERS = frozenset(
    """also only politely firmly clearly strictly immediately consistently explicitly respectfully gently kindly
    instead absolutely ever simply still generally important essential crucial necessary vital critical best
    circumstances circumstance way case event time""".split()
)
#: Words most principles share whatever their subject; what is left is the principle's topic.
FRAME_WORDS = _roots(
    """provide instructions instruction information info details detail detailed step steps stepbystep guidance advice
    content request requests question questions help assist explain explanation describe description discuss discussion
    write generate engage encourage promote facilitate enable support illegal illegally unethical unethically
    harmful harm dangerous danger risky activity activities behavior behaviors practice practices way ways method
    methods how people person persons individual individuals someone anyone others other involving involve involves
    related regarding relating specific including include topic topics thing things any kind kinds type types form
    forms matter matters helpful harmless honest safe safety ethical ethics responsible appropriate inappropriate
    respectful polite careful accurate truthful fair unbiased positive negative legal law laws"""
)
_SPELLING = (  # British -> American, applied to both sides alike so that only agreement matters
    (re.compile(r"(?<=\w)is(e|es|ed|ing|ation|ations)\b"), r"iz\1"),
    (re.compile(r"(?<=\w)(i|av|ol|on|arb)our(s|ed|ing)?\b"), r"\1or\2"),
)
_PREPOSITIONS = frozenset({"under", "in", "at", "on", "for"})
_HYPHEN = re.compile(r"(?<=\w)-(?=\w)")
_CLAUSE = re.compile(r"[,;:.!?()\[\]\n]+")


@dataclass(frozen=True)
class PrincipleKey:
    """What two principles are compared on; computed once per text."""

    polarity: Polarity
    words: frozenset[str]
    topic: frozenset[str]
    norm: str


def principle_key(text: str, kind: Polarity | None = None) -> PrincipleKey:
    """The comparison key of ``text``; ``kind`` (when the principle declares it) overrides the inferred polarity."""
    evened = _even_out(text)
    words = frozenset(_root(w) for w in content_words(evened) if len(w) > 1) - REFUSAL_VERBS
    return PrincipleKey(kind or polarity(text), words, words - FRAME_WORDS, normalize(text))


def similarity(a: PrincipleKey, b: PrincipleKey) -> float:
    """1.0 for the same normalised text; 0.0 across polarities; else min(wording, subject) Jaccard (module doc)."""
    if a.polarity != b.polarity:
        return 0.0
    if a.norm == b.norm:
        return 1.0
    wording = jaccard(a.words, b.words)
    if not a.topic and not b.topic:
        return wording
    return min(wording, jaccard(a.topic, b.topic))


def polarity(text: str) -> Polarity:
    """``restrict`` or ``permit``, read from the main clause of ``text`` (module docstring, step 1)."""
    tokens = _main_clause(text)
    start = next((i for i, t in enumerate(tokens) if t in _MODALS), 0)
    lead = tokens[1:2] if tokens[:1] and tokens[0] in _PREPOSITIONS else tokens[:1]
    negated = start > 0 and bool(lead) and lead[0] in NEGATIONS  # "Under no circumstances should ...", "Never should"
    for i in range(start, len(tokens)):
        token = tokens[i]
        if token in NEGATIONS or _is_refusal_verb(token):
            negated = not negated
        elif token in _MODALS or token in STOPWORDS or token in _FILLERS:
            continue
        else:  # the main verb: "give no advice" still restricts
            if i + 1 < len(tokens) and tokens[i + 1] == "no":
                negated = not negated
            break
    return "restrict" if negated else "permit"


def _main_clause(text: str) -> list[str]:
    """Words of the first clause holding a modal verb, else of the first clause with any words."""
    clauses = [normalize(c).split() for c in _CLAUSE.split(_even_out(text))]
    clauses = [c for c in clauses if c]
    return next((c for c in clauses if _MODALS & set(c)), clauses[0] if clauses else [])


def _is_refusal_verb(token: str) -> bool:
    return bool(_roots(token) & REFUSAL_VERBS)


def _even_out(text: str) -> str:
    """Hyphens joined ("e-mail" = "email") and British spellings made American, before any comparison."""
    text = _HYPHEN.sub("", text)
    for pattern, replacement in _SPELLING:
        text = pattern.sub(replacement, text)
    return text
