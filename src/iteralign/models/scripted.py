"""Deterministic replies from a rules file: the backend for tests and dry runs.

A rules file (YAML)::

    rules:
      - match: "(?i)bomb|poison"       # regex searched in the last user message
        reply: "I can't help with that."
      - match: "Evaluate the following"
        scope: conversation             # search the whole conversation text instead
        reply: "Evaluation: Negative."
    default: "Sure! Here is how."
    latency_s: 0.0                      # optional: sleep per conversation (to interrupt runs in tests)
    loglikelihood:                      # optional, for the Scorer interface
      - match: " Paris"                 # regex searched in the continuation
        logprob: -1.5
    default_logprob_per_char: -0.5
    labels:                             # optional: label log-probabilities (judging); without it, none are given
      - match: "Answer: I can't"        # regex searched in the whole conversation
        label: refusal                  # gets probability 0.9 when it is among the labels asked about

A ``labels`` rule gives its label probability 0.9 (the rest shared by the other labels); no matching rule gives
every label the same probability. Replies may use ``{prompt}`` (the last user message). The same input always gives
the same output, so a scripted oracle exercises every branch of the loop without a model. It is not a stand-in for
real behaviour in demos.
"""

from __future__ import annotations

import math
import re
import time
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from iteralign.models.base import ChatModel, Scorer
from iteralign.types import Completion, Conversation, GenerationParams, LoglikelihoodRequest


def _compiles(pattern: str) -> str:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from None
    return pattern


#: A regex, checked when the rules file is read (so a typo is an error naming the file, not a crash at first use).
Regex = Annotated[str, AfterValidator(_compiles)]


class Rule(BaseModel):
    """One regex -> reply rule; the first matching rule wins."""

    model_config = ConfigDict(extra="forbid")
    match: Regex
    reply: str
    scope: Literal["last_user", "conversation"] = "last_user"


class ScoreRule(BaseModel):
    """One regex on the continuation -> fixed log-likelihood."""

    model_config = ConfigDict(extra="forbid")
    match: Regex
    logprob: float


class LabelRule(BaseModel):
    """One regex on the whole conversation -> the label it votes for."""

    model_config = ConfigDict(extra="forbid")
    match: Regex
    label: str


class Rules(BaseModel):
    """The whole rules file."""

    model_config = ConfigDict(extra="forbid")
    rules: list[Rule] = Field(default_factory=list)
    default: str = "OK."
    loglikelihood: list[ScoreRule] = Field(default_factory=list)
    default_logprob_per_char: float = -0.5
    labels: list[LabelRule] | None = Field(None, description="Label log-probability rules; None: the backend gives "
                                           "none (NotImplementedError, as an API without logprobs).")
    latency_s: float = Field(0.0, ge=0, description="Sleep per conversation, to make a run slow enough to interrupt.")
    call_log: str | None = Field(None, description="Append one line per answered conversation to this file (tests "
                                 "count model calls across processes with it).")


def _last_user(conv: Conversation) -> str:
    return next((m["content"] for m in reversed(conv) if m["role"] == "user"), "")


def _cut_at_stop(text: str, stop: tuple[str, ...]) -> str:
    cuts = [text.index(s) for s in stop if s and s in text]
    return text[: min(cuts)] if cuts else text


class ScriptedModel(ChatModel, Scorer):
    """Answers by the first rule whose regex matches; scores by rule or by length."""

    def __init__(self, rules: Rules, name: str = "scripted") -> None:
        self.rules = rules
        self.name = name
        self.calls = 0  # conversations answered (for tests of caching and resume)
        self._compiled = [(re.compile(r.match, re.S), r) for r in rules.rules]

    @classmethod
    def from_file(cls, path: str | Path) -> "ScriptedModel":
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"scripted model rules file not found: {path}")
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            return cls(Rules.model_validate(data), name=f"scripted:{path}")
        except (yaml.YAMLError, ValidationError, ValueError, RecursionError) as exc:  # ValueError: not UTF-8, huge ints
            raise ValueError(f"invalid scripted rules file {path}: {exc}") from None

    def identity(self) -> dict:
        # latency and the call log do not change what the model says, so they are not part of its identity
        return {"backend": "scripted", "rules": self.rules.model_dump(exclude={"latency_s", "call_log"})}

    def reply(self, conv: Conversation) -> str:
        last = _last_user(conv)
        whole = "\n".join(m["content"] for m in conv)
        for pattern, rule in self._compiled:
            if pattern.search(whole if rule.scope == "conversation" else last):
                return rule.reply.replace("{prompt}", last)
        return self.rules.default.replace("{prompt}", last)

    def generate(self, conversations: list[Conversation], params: GenerationParams) -> list[Completion]:
        out = []
        for conv in conversations:
            self.calls += 1
            time.sleep(self.rules.latency_s)
            if self.rules.call_log:
                with open(self.rules.call_log, "a", encoding="utf-8") as fh:
                    fh.write(_last_user(conv)[:60].replace("\n", " ") + "\n")
            words = _cut_at_stop(self.reply(conv), params.stop).split(" ")
            text = " ".join(words[: params.max_new_tokens])
            finish = "length" if len(words) > params.max_new_tokens else "stop"
            prompt_tokens = sum(len(m["content"].split()) for m in conv)
            out.append(Completion(text, finish, prompt_tokens, len(text.split())))
        return out

    def label_logprobs(self, conversations: list[Conversation], labels: list[str]) -> list[dict[str, float]]:
        """By the ``labels`` rules: the first rule matching the conversation and naming one of ``labels`` wins."""
        if self.rules.labels is None:
            raise NotImplementedError(f"{self.name} has no 'labels' rules")
        wanted = {lab.strip().lower(): lab for lab in labels}
        out = []
        for conv in conversations:
            self.calls += 1
            whole = "\n".join(m["content"] for m in conv)
            rule = next((r for r in self.rules.labels
                         if r.label.strip().lower() in wanted and re.search(r.match, whole, re.S)), None)
            if rule is None or len(labels) == 1:
                out.append({lab: math.log(1 / len(labels)) for lab in labels})
                continue
            rest = math.log(0.1 / (len(labels) - 1))
            out.append({lab: math.log(0.9) if lab == wanted[rule.label.strip().lower()] else rest for lab in labels})
        return out

    def loglikelihood(self, requests: list[LoglikelihoodRequest]) -> list[float]:
        scores = []
        for req in requests:
            rule = next((r for r in self.rules.loglikelihood if re.search(r.match, req.continuation)), None)
            scores.append(rule.logprob if rule else self.rules.default_logprob_per_char * len(req.continuation))
        return scores
