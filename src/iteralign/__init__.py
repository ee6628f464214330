"""iteralign: iterative constitutional alignment of language models (after IterAlign, NAACL 2024).

The package layout follows the pipeline: ``models`` (backends), ``data`` (prompt sources), ``stages``
(red team -> judge -> propose -> reflect -> sft), ``constitution`` (the principle store), ``loop`` (iterations),
``evals`` (benchmarks) and ``report``.
"""

__version__ = "0.1.0"
