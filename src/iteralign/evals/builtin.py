"""iteralign's own benchmarks; importing this module registers them in ``evals.benchmark.BENCHMARKS``."""

from iteralign.evals import hhh, redteam_asr, truthfulqa, xstest  # noqa: F401 (imported for their registrations)
