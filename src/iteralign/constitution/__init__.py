"""The constitution: principles proposed from failures (or written by users), deduplicated, with provenance.

    from iteralign.constitution import Constitution, load, save, parse_principles
    store = load("runs/x/constitution.yaml")                  # or Constitution() for a fresh one
    store.add(parse_principles(oracle_reply), iteration=1, source_ids=["p-1a2b..."])
    prompt_block = store.render(store.relevant(failed_prompt, k=5))
    save(store, "runs/x/constitution.yaml")                   # atomic; human-readable YAML

``store`` holds the data type and the store, ``similarity`` decides when a principle restates another (polarity,
subject, wording), ``parse`` reads oracle replies, ``yaml_io`` the file format.
"""

from iteralign.constitution.parse import parse_principles
from iteralign.constitution.store import Constitution, Kind, Principle, Status, as_of, content_key, merged, render
from iteralign.constitution.yaml_io import ConstitutionError, dumps, load, loads, save

__all__ = [
    "Constitution",
    "Kind",
    "ConstitutionError",
    "Principle",
    "Status",
    "dumps",
    "load",
    "loads",
    "parse_principles",
    "render",
    "save",
    "as_of",
    "content_key",
    "merged",
]
