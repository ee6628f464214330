"""iteralign's own benchmarks; importing this module registers them in ``evals.benchmark.BENCHMARKS``."""

from iteralign.evals import hhh, lm_eval_task, redteam_asr, truthfulqa, xstest  # noqa: F401 (for their registrations)
