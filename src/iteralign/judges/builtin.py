"""iteralign's own judges; importing this module registers them in ``judges.base.JUDGES``."""

from iteralign.judges import oracle, refusal, verdict  # noqa: F401 (imported for their registrations)
