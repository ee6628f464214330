"""Prompt sources: files (JSONL/CSV/JSON and the shared benchmark formats), the Hugging Face hub and built-in seed
sets; deduplication and the seeded train / held-out split.

    from iteralign.data import load_prompts, split_prompts
    prompts = load_prompts("builtin:seeds")
    split = split_prompts(prompts)          # split.train, split.held_out, split.record (write it to the run folder)
"""

from iteralign.data.benchmark_files import BenchmarkDataError, locate, packaged_dir
from iteralign.data.records import DataError
from iteralign.records import Prompt
from iteralign.data.sources import LoadReport, PromptSourceConfig, iter_prompts, load_prompts, load_sources
from iteralign.data.split import PromptSplit, SplitConfig, SplitRecord, dedupe, split_prompts

__all__ = [
    "BenchmarkDataError",
    "DataError",
    "LoadReport",
    "Prompt",
    "PromptSourceConfig",
    "PromptSplit",
    "SplitConfig",
    "SplitRecord",
    "dedupe",
    "iter_prompts",
    "load_prompts",
    "load_sources",
    "locate",
    "packaged_dir",
    "split_prompts",
]
