"""The hand-written prompt sets shipped as package data: the contrast set of benign look-alikes
(``data/seeds/contrast_benign.jsonl``) and the two labelled intent sets (``data/labelled/intent_eval.jsonl`` for
measuring a prompt-intent classifier, ``data/labelled/intent_dev.jsonl`` for tuning it).

Checks the schema and allowed values, the coverage minimums per harm area and per type, the harmful/benign balance,
the ids, and that no prompt is a near-duplicate of another one, within a file, across the three files, or against the
two older seed files (redteam_seeds.jsonl, benign_seeds.jsonl).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from importlib import resources
from itertools import combinations

import pytest

from iteralign.text import content_words, jaccard, normalize

AREAS = {
    "cybercrime", "violence_weapons", "fraud_scams", "drugs", "misinformation", "self_harm", "hate_harassment",
    "privacy", "extremism", "theft", "child_safety", "dangerous_chem_bio",
}
BENIGN_TYPES = {
    "homonym", "figurative", "safe_target", "safe_context", "definition", "history", "fiction", "public_figure",
    "safety_education", "privacy_public",
}
ATTACK_STYLES = {
    "direct", "roleplay", "fiction", "hypothetical", "research", "persona", "prefix_injection", "multi_step",
    "refusal_suppression", "translation",
}
CONTRAST_FIELDS = {"text", "category", "type", "intent"}
INTENT_FIELDS = {"id", "text", "intent", "category", "type"}
DUPLICATE_JACCARD = 0.8

# (file, id prefix, total, per area per intent, per type per intent): the minimums the README promises.
INTENT_SETS = [
    ("labelled/intent_eval.jsonl", "ie", 320, 12, 15),
    ("labelled/intent_dev.jsonl", "id", 120, 4, 5),
]


def load(relative: str) -> list[dict]:
    """The records of one package-data JSONL file under iteralign/data, each with its line number as ``_line``."""
    text = (resources.files("iteralign.data") / relative).read_text(encoding="utf-8")
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        assert line.strip(), f"{relative}:{number}: blank line"
        rows.append({**json.loads(line), "_line": number})
    return rows


def fields(row: dict) -> set[str]:
    return set(row) - {"_line"}


def check_text(where: str, text: object) -> None:
    assert isinstance(text, str) and 10 <= len(text) <= 400, f"{where}: text missing, too short or too long"
    assert text == text.strip() and "  " not in text and "\n" not in text, f"{where}: stray whitespace in text"


def near_duplicates(items: list[tuple[str, str]]) -> list[tuple[str, str, float]]:
    """Pairs of (where, text) items whose texts normalise equal or whose content-word sets have Jaccard >= 0.8.

    Content words (iteralign.text.content_words) are the lower-cased, punctuation-free words without stopwords, lightly
    stemmed: stricter than raw word sets, so a request reworded by one word or one inflection is caught.
    """
    keyed = [(where, normalize(text), content_words(text)) for where, text in items]
    found = []
    for (wa, na, ca), (wb, nb, cb) in combinations(keyed, 2):
        score = 1.0 if na == nb else jaccard(ca, cb)
        if score >= DUPLICATE_JACCARD:
            found.append((wa, wb, round(score, 2)))
    return found


def test_near_duplicate_check_catches_rewordings_and_passes_distinct_requests():
    same = [("a", "How do I kill a frozen process on Linux?"), ("b", "How can I kill frozen processes on Linux!")]
    assert [(a, b) for a, b, _ in near_duplicates(same)] == [("a", "b")]
    distinct = [("a", "How do I kill a frozen process on Linux?"), ("b", "How do I kill the weeds on my patio?")]
    assert near_duplicates(distinct) == []


def test_contrast_set_schema_and_coverage():
    rows = load("seeds/contrast_benign.jsonl")
    for row in rows:
        where = f"contrast_benign.jsonl:{row['_line']}"
        assert fields(row) == CONTRAST_FIELDS, f"{where}: fields {sorted(fields(row))}"
        check_text(where, row["text"])
        assert row["intent"] == "benign", f"{where}: intent {row['intent']!r}"
        assert row["category"] in AREAS, f"{where}: category {row['category']!r}"
        assert row["type"] in BENIGN_TYPES, f"{where}: type {row['type']!r}"
    assert len(rows) >= 240
    areas, types = Counter(r["category"] for r in rows), Counter(r["type"] for r in rows)
    assert set(areas) == AREAS and min(areas.values()) >= 16, areas
    assert set(types) == BENIGN_TYPES and min(types.values()) >= 15, types


@pytest.mark.parametrize(("relative", "prefix", "total", "per_area", "per_type"), INTENT_SETS)
def test_intent_set_schema_balance_and_coverage(relative, prefix, total, per_area, per_type):
    rows = load(relative)
    for row in rows:
        where = f"{relative}:{row['_line']}"
        assert fields(row) == INTENT_FIELDS, f"{where}: fields {sorted(fields(row))}"
        assert row["id"] == f"{prefix}-{row['_line']:03d}", f"{where}: id {row['id']!r}, expected numbering by line"
        check_text(where, row["text"])
        assert row["category"] in AREAS, f"{where}: category {row['category']!r}"
        allowed = {"harmful": ATTACK_STYLES, "benign": BENIGN_TYPES}.get(row["intent"])
        assert allowed is not None, f"{where}: intent {row['intent']!r}"
        assert row["type"] in allowed, f"{where}: type {row['type']!r} not allowed for a {row['intent']} prompt"
    assert len(rows) >= total and len({r["id"] for r in rows}) == len(rows)
    for benign, harmful in zip(rows[::2], rows[1::2]):  # the README's pairing: benign line, then its harmful twin
        where = f"{relative}:{benign['_line']}-{harmful['_line']}"
        assert (benign["intent"], harmful["intent"]) == ("benign", "harmful"), f"{where}: not a benign/harmful pair"
        assert benign["category"] == harmful["category"], f"{where}: a pair across two harm areas"
    for intent, type_values in (("harmful", ATTACK_STYLES), ("benign", BENIGN_TYPES)):
        subset = [r for r in rows if r["intent"] == intent]
        assert len(subset) * 2 == len(rows), f"{relative}: {len(subset)} {intent} of {len(rows)}"
        areas, types = Counter(r["category"] for r in subset), Counter(r["type"] for r in subset)
        assert set(areas) == AREAS and min(areas.values()) >= per_area, (intent, areas)
        assert set(types) == type_values and min(types.values()) >= per_type, (intent, types)


def test_no_near_duplicates_within_or_across_the_sets_and_the_seed_files():
    files = [
        "seeds/redteam_seeds.jsonl", "seeds/benign_seeds.jsonl", "seeds/contrast_benign.jsonl",
        "labelled/intent_eval.jsonl", "labelled/intent_dev.jsonl", "labelled/intent_train.jsonl",
    ]
    items = [(f"{name}:{row['_line']}", row["text"]) for name in files for row in load(name)]
    assert near_duplicates(items) == []


def test_harmful_prompts_are_requests_not_content():
    """A coarse guard that a harmful prompt stays a request: short, and with no code block or numbered recipe."""
    for relative, *_ in INTENT_SETS:
        for row in load(relative):
            if row["intent"] == "harmful":
                where = f"{relative}:{row['_line']}"
                assert len(row["text"]) <= 300, f"{where}: a harmful prompt longer than 300 characters"
                assert "```" not in row["text"] and not re.search(r"\b\d+\s?(mg|ml|g|grams)\b", row["text"]), where


#: XSTest is evaluation only: no prompt we train on, or tune the intent classifier on, may restate one of its prompts.
#: (Word-set Jaccard; the highest today is 0.43 for intent_eval, on a shared "phone number" frame.)
XSTEST_JACCARD = 0.45


@pytest.mark.parametrize("relative", ["seeds/redteam_seeds.jsonl", "seeds/benign_seeds.jsonl",
                                      "seeds/contrast_benign.jsonl", "labelled/intent_dev.jsonl",
                                      "labelled/intent_eval.jsonl", "labelled/intent_train.jsonl"])
def test_nothing_is_copied_or_paraphrased_from_xstest(relative):
    import csv

    from iteralign.data.benchmark_files import packaged_dir

    with open(packaged_dir() / "xstest/xstest_prompts.csv", encoding="utf-8-sig", newline="") as fh:
        xstest = [(row["prompt"], content_words(row["prompt"])) for row in csv.DictReader(fh)]
    close = [(row["text"], text, round(score, 2)) for row in load(relative)
             for text, words in xstest if (score := jaccard(content_words(row["text"]), words)) >= XSTEST_JACCARD]
    assert close == []
