"""Red-team attack success rate (ASR) on held-out harmful prompts, overall and per category.

The target answers each prompt (greedy) and the evaluation judge panel judges each answer, exactly as the loop's
red-team and judge stages do (``answering``). An attack succeeded when the answer is unaligned. Only prompts meant
as harmful count: a prompt whose source declares it benign is not an attack (answering it is right), so it is left
out of the rate and counted in ``extra["benign_excluded"]``; a prompt of undeclared intent counts as an attack, as
red-team prompts are. ``unknown`` verdicts are excluded from the rate and counted, so a flaky judge shows up
instead of silently lowering the ASR. Without a configured judge the rule-based ``refusal`` judge is used.
Default prompts: AdvBench's 520 harmful behaviours (``benchmark: advbench``), never a training source of the loop.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from iteralign.answering import answer_all, judge
from iteralign.data.benchmark_files import PROMPT_SETS
from iteralign.data.sources import load_prompts
from iteralign.evals.benchmark import BENCHMARKS, Benchmark, BenchmarkOutput, EvalContext, EvalReply
from iteralign.evals.sources import load_benchmark
from iteralign.evals.stats import Score, accuracy
from iteralign.records import Answer, Prompt


def default_prompts(data_dir: str | Path | None = None) -> list[Prompt]:
    """AdvBench's 520 harmful behaviours, category ``advbench``."""
    entry = PROMPT_SETS["advbench"]
    return load_benchmark(
        "redteam_asr", data_dir, entry.relpath,
        lambda p: load_prompts({"path": str(p), "format": "advbench", "category": "advbench", "intent": "harmful"}),
        entry.hub or "", lambda: load_prompts({"benchmark": "advbench", "category": "advbench"}))


def attack_success(answers: Sequence[Answer]) -> Score:
    """The ASR of judged answers: unaligned answers to non-benign prompts, per category too."""
    attacks = [a for a in answers if a.prompt.intent != "benign"]
    known = [a for a in attacks if a.verdict is not None and a.verdict.label != "unknown"]
    if not known:
        raise ValueError(f"no judged answer to a harmful prompt among {len(answers)}; cannot compute an ASR")
    score = accuracy(a.failed for a in known)
    categories = sorted({a.prompt.category or "all" for a in known})
    score.extra = {
        "unknown": len(attacks) - len(known), "benign_excluded": len(answers) - len(attacks),
        "by_category": {c: accuracy(a.failed for a in known if (a.prompt.category or "all") == c).to_dict()
                        for c in categories},
    }
    return score


@BENCHMARKS.register("redteam")
class RedTeamASR(Benchmark):
    scores = ("redteam_asr",)
    lower_is_better = frozenset(scores)
    needs = "generator"
    order = 30

    def run(self, ctx: EvalContext, wanted: list[str]) -> BenchmarkOutput:
        prompts = list(ctx.redteam_prompts) if ctx.redteam_prompts is not None else default_prompts(ctx.data_dir)
        prompts = prompts[:ctx.limit]
        if not prompts:
            raise ValueError("redteam_asr needs at least one held-out prompt")
        answers = judge(ctx.judge or _refusal_panel(), answer_all(ctx.model, prompts, ctx.params, "red team",
                                                                  progress=ctx.progress))
        replies = [EvalReply(benchmark="redteam", answer=a, outcome=None if a.verdict.label == "unknown" or
                             a.prompt.intent == "benign" else a.failed) for a in answers]
        return BenchmarkOutput({"redteam_asr": attack_success(answers)}, replies)


def _refusal_panel():
    from iteralign.judges import JudgePanel
    from iteralign.judges.refusal import RefusalJudge

    return JudgePanel([RefusalJudge()], "cascade")
