"""The text helpers every part shares: the one sentence splitter, curly apostrophes, the repetition cut."""

import pytest

from iteralign.text import before_repetition, pieces, sentences, straighten


@pytest.mark.parametrize("text,expected", [
    ("Do this: 1. Open it. 2. Close it.", ["Do this:", "1. Open it.", "2. Close it."]),  # list numbers stay
    ("No; never.\n\nAsk a doctor!", ["No;", "never.", "Ask a doctor!"]),
    ("Version 3.11 is out", ["Version 3.11 is out"]),  # a mark not followed by a space ends nothing
    ("", []),
])
def test_sentences_end_at_marks_and_lines_but_not_at_list_numbers(text, expected):
    assert sentences(text) == expected
    assert "".join(pieces(text)) == text


def test_straighten_maps_both_curly_single_quotes():
    assert straighten("It\u2019s \u2018fine\u2019") == "It's 'fine'"


def test_a_numbered_loop_is_cut_where_it_starts_repeating():
    looped = "Steps:\n1. Mix the flour and water.\n2. Knead it well.\n3. Mix the flour and water.\n4. Knead"
    assert before_repetition(looped) == "Steps:\n1. Mix the flour and water.\n2. Knead it well."
    assert before_repetition("Short. Short. Short.") == "Short. Short. Short."  # under four words: never a repeat


def test_a_heading_that_introduced_the_repeat_goes_with_it():
    looped = ("Try these:\n\n1. **Rinse**: Rinse the board with hot water.\n2. **Dry it**: Dry it in the sun.\n"
              "3. **Rinse again**: Rinse the board with hot water.")
    assert before_repetition(looped) == ("Try these:\n\n1. **Rinse**: Rinse the board with hot water.\n2. **Dry it**: "
                                         "Dry it in the sun.")
