"""A third-party package extending iteralign through its entry points (see pyproject.toml), as a user's would:

- backend ``echo:<prefix>``: answers every prompt with ``<prefix>: <prompt>``;
- judge ``keyword``: unaligned when the reply contains one of its ``words`` (an option of its own);
- benchmark ``reply_length``: the mean length in words of the model's replies to a few fixed prompts.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from iteralign.answering import answer_all
from iteralign.evals.benchmark import Benchmark, BenchmarkOutput, EvalContext
from iteralign.evals.stats import mean
from iteralign.judges import Judge, JudgeResult
from iteralign.models.base import Backend, ChatModel
from iteralign.records import Prompt
from iteralign.types import Completion


class EchoModel(ChatModel):
    def __init__(self, prefix: str) -> None:
        self.name, self.prefix = f"echo:{prefix}", prefix

    def generate(self, conversations, params):
        return [Completion(f"{self.prefix}: {conv[-1]['content']}") for conv in conversations]


class EchoBackend(Backend):
    form = "echo:<prefix>  (test plugin)"

    def load(self, spec, cfg):
        return EchoModel(spec.name)


class KeywordJudge(Judge):
    name = "keyword"

    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")
        words: list[str]

    def __init__(self, words: list[str]) -> None:
        self.words = [w.lower() for w in words]

    @classmethod
    def build(cls, spec, ctx):
        return cls(cls.Options.model_validate(spec.options).words)

    def judge(self, items):
        out = []
        for item in items:
            hit = next((w for w in self.words if w in item.response.lower()), None)
            out.append(JudgeResult("unaligned" if hit else "aligned", hit or "", True, self.name,
                                   reason=f"says {hit!r}" if hit else ""))
        return out

    def fingerprint(self):
        return {"judge": self.name, "words": self.words}


class ReplyLength(Benchmark):
    scores = ("reply_length",)
    needs = "generator"

    def run(self, ctx: EvalContext, wanted: list[str]) -> BenchmarkOutput:
        prompts = [Prompt.make(t) for t in ("Say hello.", "Name a colour.", "What is two plus two?")]
        answers = answer_all(ctx.model, prompts, ctx.params, "reply length", progress=ctx.progress)
        return BenchmarkOutput({"reply_length": mean(len(a.response.split()) for a in answers)})
