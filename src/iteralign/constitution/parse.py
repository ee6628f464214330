"""Turn an oracle's free-text reply into separate principles.

Oracles answer in every style: numbered lists ("1.", "1)", "(1)", "Principle 1:"), bullets ("-", "*", "•"), bold
markdown and headings, items wrapped over several lines, or plain paragraphs. ``parse_principles`` splits list items
when there is a list (intro and outro prose around it are dropped) and paragraphs otherwise, removes markdown and
lead-ins ("Here are some principles:"), and drops what is not a usable principle: items under ``min_words`` words,
refusals ("I'm sorry, I can't..."), commentary ("These principles will help...") and generic platitudes whose every
content word is in ``GENERIC_WORDS`` ("The assistant should be helpful, harmless and honest.").

``paper_mode=True`` does what the authors' code does instead: the last paragraph of the reply is the constitution.
"""

from __future__ import annotations

import re

from iteralign.text import content_words, normalize

_MARKER = re.compile(
    r"""^\s*(?:\#{1,6}\s*)?(?:\*\*|__)?\s*(?:
        [-*•+·]\s+                                          # bullets
      | \(?\d{1,3}[.)](?=\s|$|\*\*|__)\s*(?:\*\*|__)?\s*     # 1.  1)  (1)
      | (?:principle|rule|guideline)\s*\#?\s*\d{1,3}\s*(?:\*\*|__)?\s*[:.)\-–—]?\s*(?:\*\*|__)?\s*  # Principle 1:
    )""",
    re.IGNORECASE | re.VERBOSE,
)
_HEADING = re.compile(r"^\s*#{1,6}\s")
_FENCE = re.compile(r"^\s*(```|~~~)")
_LEAD_IN = re.compile(
    r"^(?:(?:sure|certainly|of course|okay|ok|absolutely|great)\b[,!.]*\s*)?"
    r"(?:here\s+(?:are|is)|below\s+(?:are|is)|the\s+following\s+(?:are|is)|i\s+propose|i\s+suggest|proposed)\b"
    r"[^:\n]*:\s*",
    re.IGNORECASE,
)
_LABEL = re.compile(  # "Principle:", "Rule 2:" (also after a list marker: "1. **Principle 1:** ...")
    r"^(?:(?:principles?|rules?|guidelines?)(?:\s*\#?\s*\d{1,3}\s*[:.)\-–—]|\s*:)|(?:constitution|answer|response)\s*:)\s*",
    re.IGNORECASE,
)
_REFUSAL = re.compile(
    r"^(?:i'?m\s+sorry|i\s+am\s+sorry|sorry\b|i\s+apologi[sz]e|i\s+can(?:not|'t|\s+not)\b|i\s+won'?t\b|"
    r"i'?m\s+(?:not\s+able|unable)|i\s+am\s+(?:not\s+able|unable)|as\s+an\s+ai\b|unfortunately\b)",
    re.IGNORECASE,
)
_COMMENTARY = re.compile(
    r"^(?:these|the\s+above|the\s+principles\s+above|by\s+following|following\s+these|in\s+summary|overall,|"
    r"to\s+summari[sz]e|note:|i\s+hope)\b",
    re.IGNORECASE,
)
_EMPHASIS = re.compile(r"(\*\*|__|\*|_|`)(?=\S)(.{1,300}?)(?<=\S)\1")  # bounded: linear time on any reply

#: Words that, alone, make a principle a platitude the loop cannot act on.
GENERIC_WORDS = content_words(
    "helpful harmless honest safe safety ethical ethics good responsible appropriate respectful polite kind moral "
    "harm harmful careful accurate truthful fair unbiased positive"
)


def parse_principles(reply: str, paper_mode: bool = False, min_words: int = 5) -> list[str]:
    """The principles in an oracle ``reply``, in order, cleaned and deduplicated; never raises on any string."""
    if not isinstance(reply, str):
        return []
    lines = [line for line in reply.replace("\r\n", "\n").replace("\r", "\n").split("\n") if not _FENCE.match(line)]
    if paper_mode:
        paragraphs = _paragraphs(lines)
        last = _clean(paragraphs[-1]) if paragraphs else ""
        return [last] if last else []
    has_list = any(_MARKER.match(line) for line in lines)
    items = _list_items(lines) if has_list else _paragraphs(lines)
    kept: dict[str, str] = {}
    for item in items:
        text = _clean(item)
        if _usable(text, min_words):
            kept.setdefault(normalize(text), text)
    return list(kept.values())


def _paragraphs(lines: list[str]) -> list[str]:
    """Blank-line separated paragraphs, headings dropped, lines of a paragraph joined."""
    paragraphs, current = [], []
    for line in lines + [""]:
        if line.strip() and not _HEADING.match(line):
            current.append(line.strip())
        elif current:
            paragraphs.append(" ".join(current))
            current = []
    return paragraphs


def _list_items(lines: list[str]) -> list[str]:
    """Items of the list(s) in ``lines``: a marker line starts an item; the lines that follow continue it unless a
    blank line comes first and they are not indented (then they are prose after the list). An item whose marker line
    holds no text ("Principle 1:") takes the next paragraph."""
    items: list[list[str]] = []
    current: list[str] | None = None
    after_blank = False
    for line in lines:
        marker = _MARKER.match(line)
        if marker:
            current = [line[marker.end():].strip()]
            items.append(current)
        elif not line.strip():
            after_blank = True
            continue
        elif _HEADING.match(line):
            current = None
        elif current is not None:
            empty_item = not "".join(current).strip()
            if not after_blank or line[:1].isspace() or empty_item:
                current.append(line.strip())
            else:
                current = None
        after_blank = False
    return [" ".join(part for part in item if part) for item in items]


def _clean(text: str) -> str:
    """Remove markdown emphasis, lead-ins, labels and wrapping quotes; collapse whitespace."""
    text = " ".join(text.split())
    for _ in range(3):  # nested emphasis such as ***x***
        text = _EMPHASIS.sub(r"\2", text)
    text = text.replace("**", "").replace("__", "")
    text = _LEAD_IN.sub("", text)
    text = _LABEL.sub("", text)
    text = text.strip().strip("\"'“”‘’").strip()
    return text.lstrip("-*•·:#> ").strip()


def _usable(text: str, min_words: int) -> bool:
    """Long enough, not a refusal, not commentary about the list, not a platitude."""
    if len(text.split()) < min_words or text.endswith(":"):
        return False
    if _REFUSAL.match(text) or _COMMENTARY.match(text):
        return False
    words = content_words(text)
    return bool(words) and not words <= GENERIC_WORDS
