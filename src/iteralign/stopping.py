"""When the loop stops: the ``stop:`` section and the rule applied after each iteration."""

from __future__ import annotations

from pydantic import Field

from iteralign.types import Strict


class StopConfig(Strict):
    max_iterations: int = Field(2, ge=1)
    min_failure_rate: float = Field(0.0, ge=0, le=1, description="Stop once the red-team failure rate is at most this.")
    stop_when_no_new_failures: bool = Field(True, description="Stop when an iteration finds no failures.")
    stop_when_rejected: bool = Field(
        True, description="Stop when the gate rejects an iteration: the next one would red-team the same model on the "
        "same prompts and repeat it. Chunked (paper) runs red-team new prompts each iteration and go on."
    )


def stop_reason(cfg: StopConfig, summary: dict, chunked: bool) -> str | None:
    """Why the loop ends after the iteration ``summary`` describes, or None to go on."""
    if summary.get("stopped") == "no failures" and cfg.stop_when_no_new_failures:
        return "no failures"
    if summary.get("accepted") is False and cfg.stop_when_rejected and not chunked:
        return "rejected by the gate"
    if "failure_rate" in summary and summary["failure_rate"] <= cfg.min_failure_rate and summary["failures"]:
        return f"failure rate {summary['failure_rate']:.3f} <= {cfg.min_failure_rate}"
    return None
