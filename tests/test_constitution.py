"""The principle store: parsing messy oracle replies, deduplication with provenance, relevance, pin/disable, and the
hand-editable YAML file (round trip and errors)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iteralign.constitution import (
    Constitution,
    ConstitutionError,
    Principle,
    dumps,
    load,
    loads,
    parse_principles,
    render,
    save,
)
from iteralign.constitution.similarity import polarity, principle_key, similarity

WEAPONS = "The assistant should refuse to give step-by-step instructions for building weapons or explosives."
PRIVACY = "The assistant should not reveal home addresses or phone numbers of private individuals."
CRISIS = "When someone mentions self-harm, the assistant should offer crisis resources instead of methods."

# --- parsing oracle replies -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "reply",
    [
        f"Here are some principles:\n\n1. {WEAPONS}\n2. {PRIVACY}\n3. {CRISIS}\n",
        f"1) {WEAPONS}\n2) {PRIVACY}\n3) {CRISIS}",
        f"(1) {WEAPONS}\n(2) {PRIVACY}\n(3) {CRISIS}",
        f"Principle 1: {WEAPONS}\nPrinciple 2: {PRIVACY}\n**Principle 3:** {CRISIS}",
        f"- {WEAPONS}\n* {PRIVACY}\n• {CRISIS}",
        f"## Proposed principles\n\n1. **{WEAPONS}**\n2. *{PRIVACY}*\n\n### More\n3. __{CRISIS}__",
        f"{WEAPONS}\n\n{PRIVACY}\n\n{CRISIS}",
        f"Sure! Here are three principles: \n\n{WEAPONS}\n\n{PRIVACY}\n\n{CRISIS}\n\nThese principles will help.",
        f"```\n1. {WEAPONS}\n2. {PRIVACY}\n3. {CRISIS}\n```",
    ],
    ids=["dot", "paren", "both-parens", "principle-n", "bullets", "markdown", "prose", "prose-lead-in", "fenced"],
)
def test_parse_styles_give_the_same_three_principles(reply):
    assert parse_principles(reply) == [WEAPONS, PRIVACY, CRISIS]


def test_parse_multiline_items_and_outro_prose():
    reply = (
        "After reviewing the failures, I propose:\n\n"
        "1. The assistant should refuse to give step-by-step instructions\n"
        "   for building weapons or explosives.\n"
        "2. The assistant should not reveal home addresses or phone numbers\n"
        "of private individuals.\n\n"
        "Following these rules would make the assistant far safer overall."
    )
    assert parse_principles(reply) == [WEAPONS, PRIVACY]


def test_parse_marker_with_text_on_the_next_line():
    assert parse_principles(f"Principle 1:\n\n{WEAPONS}\n\nPrinciple 2:\n{PRIVACY}") == [WEAPONS, PRIVACY]


@pytest.mark.parametrize(
    "reply",
    [
        "",
        "   \n\n  ",
        "I'm sorry, but I can't help with creating principles for this content.",
        "I cannot assist with that request. As an AI, I must decline.",
        "1. Be helpful.\n2. Be honest and harmless.\n3. The assistant should always be safe and ethical.",
        "- Be nice\n- Avoid harm\n- Stay on topic",
    ],
    ids=["empty", "blank", "refusal", "refusal-2", "generic", "too-short"],
)
def test_parse_drops_empty_refusals_generic_and_short(reply):
    assert parse_principles(reply) == []


def test_parse_dedupes_within_a_reply_and_keeps_titles():
    reply = f"1. **Weapons:** {WEAPONS}\n2. {PRIVACY}\n3. {PRIVACY.upper()}"
    assert parse_principles(reply) == [f"Weapons: {WEAPONS}", PRIVACY]


def test_paper_mode_takes_the_last_paragraph_verbatim_as_the_constitution():
    reply = f"Let me think about the failures first.\n\n1. {WEAPONS}\n2. {PRIVACY}\n\n{CRISIS}\n"
    assert parse_principles(reply, paper_mode=True) == [CRISIS]
    assert parse_principles("", paper_mode=True) == []


@settings(max_examples=300, deadline=None)
@given(st.text() | st.lists(st.sampled_from(["1.", "- ", "**", "Principle 2:", "\n", "\n\n", "  ", "#", WEAPONS,
                                             "I'm sorry", "(3)", "word"])).map("".join))
def test_parse_never_raises_and_returns_clean_strings(reply):
    for item in parse_principles(reply) + parse_principles(reply, paper_mode=True):
        assert isinstance(item, str) and item and item == item.strip()


# --- the store --------------------------------------------------------------------------------------------------


def test_near_duplicates_merge_provenance_instead_of_adding():
    store = Constitution()
    added = store.add([WEAPONS, PRIVACY], iteration=1, source_ids=["f1", "f2"])
    assert [p.id for p in added] == ["P001", "P002"] and all(p.origin == "proposed" for p in added)
    reworded = "The assistant must refuse to provide step-by-step instructions for making weapons or explosives."
    again = store.add([reworded, WEAPONS.lower(), CRISIS], iteration=2, source_ids=["f2", "f3"])
    assert [p.text for p in again] == [CRISIS] and again[0].iteration == 2
    assert store.get("P001").source_failure_ids == ["f1", "f2", "f3"]
    assert store.get("P002").source_failure_ids == ["f1", "f2"]


def test_same_additions_give_identical_files():
    def build() -> str:
        store = Constitution()
        store.add([WEAPONS, PRIVACY], iteration=1, source_ids=["f1"])
        store.add([CRISIS, WEAPONS], iteration=2, source_ids=["f2"])
        return dumps(store)

    text = build()
    assert "created" not in text  # no wall-clock stamps: a resumed run writes the same constitution.yaml
    assert text == build()


def test_similarity_threshold_is_configurable():
    reworded = "The assistant must decline to give step-by-step instructions for building weapons, bombs or explosives."
    default, strict = Constitution(), Constitution(similarity_threshold=0.95)
    default.add([WEAPONS, reworded], iteration=0)
    strict.add([WEAPONS, reworded], iteration=0)
    assert (len(default), len(strict)) == (1, 2)
    with pytest.raises(ValueError, match="similarity_threshold"):
        Constitution(similarity_threshold=0)


def test_disabled_principles_are_unused_and_not_re_added_pinned_always_relevant():
    store = Constitution()
    store.add([WEAPONS, PRIVACY, CRISIS], iteration=1)
    store.set_status("P001", "disabled")
    store.set_status("P003", "pinned")
    assert [p.id for p in store.active()] == ["P002", "P003"]
    assert store.add([WEAPONS], iteration=2, source_ids=["f9"]) == []
    assert store.get("P001").source_failure_ids == ["f9"]
    address_failure = "Tell me the home address and phone number of my neighbour"
    assert [p.id for p in store.relevant(address_failure, k=2)] == ["P002", "P003"]
    assert [p.id for p in store.relevant(address_failure, k=1)] == ["P003"]  # pinned beats the budget
    assert [p.id for p in store.relevant("how to build explosives", k=5)] == ["P002", "P003"]


def test_relevant_ranks_by_word_overlap():
    store = Constitution()
    store.add([WEAPONS, PRIVACY, CRISIS], iteration=1)
    assert [p.id for p in store.relevant("Give me instructions for building explosives at home", k=1)] == ["P001"]
    assert [p.id for p in store.relevant("I want to self-harm, what methods work", k=1)] == ["P003"]


def test_render_numbers_and_indents_and_record_use():
    store = Constitution([Principle(id="P001", text="Line one\nline two"), Principle(id="P002", text=PRIVACY)])
    assert store.render() == f"1. Line one\n   line two\n2. {PRIVACY}"
    assert render([]) == ""
    store.record_use(["P002", "P002"])
    assert store.get("P002").uses == 2
    with pytest.raises(KeyError, match="P404"):
        store.record_use(["P404"])


# --- YAML -------------------------------------------------------------------------------------------------------


def test_yaml_round_trip_is_readable_and_atomic(tmp_path):
    store = Constitution()
    store.add([WEAPONS + " " + PRIVACY, CRISIS], iteration=1, source_ids=["p-1", "p-2"])
    store.add(["Say clearly when you are unsure.\nNever invent citations or statistics."], 2, origin="user",
              created="2025-01-02T03:04:05+00:00")
    store.set_status("P002", "pinned")
    path = tmp_path / "run" / "constitution.yaml"
    save(store, path)
    text = path.read_text()
    assert text.startswith("# iteralign constitution") and "text: >-" in text and "text: |-" in text
    assert "source_failure_ids: [p-1, p-2]" in text and text.count("created:") == 1
    assert list(path.parent.iterdir()) == [path]  # no temporary file left behind
    loaded = load(path)
    assert loaded.principles == store.principles
    save(loaded, path)
    assert path.read_text() == text


def test_hand_written_entries_get_ids_and_defaults(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("# my own principles\nprinciples:\n  - id: P007\n    text: Keep it kind.\n    status: pinned\n"
                    "  - Always cite sources when stating facts.\n  - text: Do not give legal advice.\n")
    store = load(path)
    assert [(p.id, p.status, p.origin) for p in store] == [
        ("P007", "pinned", "user"), ("P008", "active", "user"), ("P009", "active", "user")]
    assert load(write_text(tmp_path / "empty.yaml", "")).principles == []


def write_text(path, text):
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("principles:\n  - id: P001\n    text: ok\n  - id: P002\n    text: fine\n    status: paused\n",
         r"c\.yaml:4: principle #2 \(id P002\): field 'status': Input should be 'active', 'pinned' or 'disabled'"),
        ("principles:\n  - id: P001\n    text: a\n  - id: P001\n    text: b\n",
         r"c\.yaml:4: principle #2: duplicate id 'P001' \(also principle #1\)"),
        ("principles:\n  - id: P001\n    txt: typo\n", r"c\.yaml:2: principle #1 \(id P001\): field 'text': Field req"),
        ("principles:\n  - id: P001\n    text: a\n    colour: red\n", r"field 'colour': Extra inputs"),
        ("principles:\n  - id: P001\n    text: a\n    uses: -1\n", r"field 'uses': Input should be greater"),
        ("principles:\n  - 42\n", r"c\.yaml:2: principle #1: expected a mapping or a string, found int"),
        ("principles:\n  - id: P001\n  text: [unclosed\n", r"c\.yaml:\d+: invalid YAML"),
        ("principle:\n  - text: a\n", r"unknown top-level key 'principle'"),
        ("principles: yes\n", r"'principles' must be a list, found bool"),
        ("just a string\n", r"expected a mapping with a 'principles' list, found str"),
    ],
    ids=["bad-status", "dup-id", "missing-text", "extra-field", "negative-uses", "number", "syntax", "top-key",
         "not-list", "scalar"],
)
def test_hand_edited_bad_yaml_names_file_line_entry_and_field(tmp_path, body, message):
    path = write_text(tmp_path / "c.yaml", body)
    with pytest.raises(ConstitutionError, match=message):
        load(path)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConstitutionError, match=r"nope\.yaml: file not found"):
        load(tmp_path / "nope.yaml")


_texts = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1).filter(lambda t: t.strip())
_principles = st.builds(
    Principle,
    id=st.from_regex(r"P\d{3}", fullmatch=True),
    text=_texts,
    iteration=st.integers(0, 50),
    source_failure_ids=st.lists(st.text(min_size=1, max_size=12)),
    status=st.sampled_from(["active", "pinned", "disabled"]),
    origin=st.sampled_from(["proposed", "user"]),
    uses=st.integers(0, 1000),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_principles, max_size=5, unique_by=lambda p: p.id))
def test_yaml_round_trip_property(principles):
    assert loads(dumps(Constitution(principles))).principles == principles


def test_principle_label_after_a_list_marker_is_stripped():
    reply = ("1. **Principle 1:** The assistant should refuse to explain how to build weapons.\n"
             "2. **Principle 2:** The assistant should point people in crisis to real help lines.")
    assert parse_principles(reply) == ["The assistant should refuse to explain how to build weapons.",
                                       "The assistant should point people in crisis to real help lines."]


# --- deduplication: polarity and subject ------------------------------------------------------------------------

PAIRS = Path(__file__).parent / "data" / "principle_pairs.jsonl"


def _merged(a: str, b: str) -> bool:
    return Constitution([Principle(id="P001", text=a)]).find_duplicate(b) is not None


def test_labelled_pairs_keep_polarity_and_harms_apart_and_merge_paraphrases():
    """tests/data/principle_pairs.jsonl (64 pairs, BENCHMARKS.md "Principle deduplication"): no pair of opposite
    polarity and no pair about different harms is merged; true restatements mostly are."""
    pairs = [json.loads(line) for line in PAIRS.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len(pairs) >= 30 and {p["label"] for p in pairs} == {"duplicate", "distinct"}
    apart = [p for p in pairs if p["kind"] in ("polarity", "permit_restrict", "harm")]
    assert len(apart) >= 15 and all(p["label"] == "distinct" for p in apart)
    assert [(p["a"], p["b"]) for p in apart if _merged(p["a"], p["b"]) or _merged(p["b"], p["a"])] == []
    duplicates = [p for p in pairs if p["label"] == "duplicate"]
    recall = sum(_merged(p["a"], p["b"]) for p in duplicates) / len(duplicates)
    assert recall >= 0.85


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The assistant should never provide instructions for building weapons.", "restrict"),
        ("The assistant should always provide instructions for building weapons.", "permit"),
        ("The assistant shouldn't help users stalk people.", "restrict"),
        ("The assistant should give no advice on evading taxes.", "restrict"),
        ("Requests to write malware should be declined by the assistant.", "restrict"),
        ("The assistant should never refuse to answer questions about killing a process.", "permit"),
        ("The assistant should refuse requests that are not legal.", "restrict"),
        ("When a user mentions self-harm, the assistant should not judge them.", "restrict"),
        ("Under no circumstances should the assistant explain how to disable brakes.", "restrict"),
        ("It is important for the assistant to avoid sharing private addresses.", "restrict"),
        ("Do not describe methods of self-harm.", "restrict"),
        ("Answer questions about killing processes.", "permit"),
        ("The assistant should help users avoid phishing scams.", "permit"),
    ],
)
def test_polarity_is_read_from_the_main_clause(text, expected):
    assert polarity(text) == expected


def test_a_disabled_principle_blocks_its_restatements_but_not_its_negation():
    """README: a disabled principle is never re-added; that must not stop the rule that corrects it."""
    store = Constitution()
    store.add(["The assistant should help users write keyloggers for monitoring others."], iteration=1)
    store.set_status("P001", "disabled")
    again = store.add(["The assistant should assist users in writing keyloggers for monitoring others."],
                      iteration=2, source_ids=["f9"])
    assert again == [] and store.get("P001").source_failure_ids == ["f9"]
    fixed = store.add(["The assistant should refuse to help users write keyloggers for monitoring others."],
                      iteration=2)
    assert [p.id for p in fixed] == ["P002"] and [p.id for p in store.active()] == ["P002"]


def test_a_declared_kind_overrides_the_inferred_polarity():
    """Principles that declare ``kind: permit | restrict`` compare on it: same words, different kind, no merge."""
    text = "The assistant should discuss how to kill a stuck process."
    assert similarity(principle_key(text), principle_key(text)) == 1.0
    assert similarity(principle_key(text, kind="permit"), principle_key(text, kind="restrict")) == 0.0
