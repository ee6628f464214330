"""vLLM engines shared across adapters: one ``vllm.LLM`` per base model, a ``LoRARequest`` per adapter.

The loop's target changes every accepted iteration only by its LoRA adapter. Loading a new engine for each would
move the whole base model again; instead an engine is keyed by everything but the adapter (model, dtype, tensor
parallelism, engine arguments) and serves each adapter as a ``LoRARequest`` with its own id, so only megabytes move.

Whether an engine outlives the model that used it depends on the memory it holds: when its config caps
``engine_args.gpu_memory_utilization`` at ``KEEP_AT_MOST`` or less, it stays loaded (SFT trains beside it in the rest
of the GPU memory) until ``close_all``; otherwise closing the model shuts the engine down, so that training gets the
GPUs, and the next use loads it again. An adapter of a higher rank than the engine was built for needs a new engine.
"""

from __future__ import annotations

import gc
import json
from typing import Any

#: Engines capped at this share of GPU memory (``gpu_memory_utilization``) stay loaded while SFT runs.
KEEP_AT_MOST = 0.5


class EnginePool:
    def __init__(self) -> None:
        self._engines: dict[str, tuple[Any, int]] = {}  # key -> (engine, its max_lora_rank)
        self._lora_ids: dict[str, int] = {}

    def get(self, api: Any, kwargs: dict[str, Any]) -> Any:
        """The engine for these ``vllm.LLM`` arguments, shared when only the LoRA rank it must serve differs."""
        key = self.key(kwargs)
        rank = int(kwargs.get("max_lora_rank", 0))
        entry = self._engines.get(key)
        if entry is not None and entry[1] >= rank:
            return entry[0]
        if entry is not None:  # built for smaller adapters
            shutdown(self._engines.pop(key)[0])
        engine = api.LLM(**kwargs)
        self._engines[key] = (engine, rank)
        return engine

    def release(self, kwargs: dict[str, Any]) -> None:
        """A model of this engine was closed: shut the engine down unless it is capped to stay (module docstring)."""
        if float(kwargs.get("gpu_memory_utilization", 0.9)) > KEEP_AT_MOST:
            entry = self._engines.pop(self.key(kwargs), None)
            if entry is not None:
                shutdown(entry[0])

    def lora_id(self, adapter_path: str) -> int:
        """A stable id per adapter directory (vLLM caches adapters by id)."""
        return self._lora_ids.setdefault(adapter_path, len(self._lora_ids) + 1)

    def close_all(self) -> None:
        while self._engines:
            shutdown(self._engines.popitem()[1][0])

    def __len__(self) -> int:
        return len(self._engines)

    @staticmethod
    def key(kwargs: dict[str, Any]) -> str:
        return json.dumps({k: v for k, v in kwargs.items() if k != "max_lora_rank"}, sort_keys=True, default=str)


def shutdown(engine: Any) -> None:
    """Shut an engine down and free GPU memory (vLLM's own cleanup where this version has it)."""
    stop = getattr(getattr(getattr(engine, "llm_engine", None), "engine_core", None), "shutdown", None)
    if callable(stop):
        stop()
    del engine
    gc.collect()
    try:
        from vllm.distributed.parallel_state import cleanup_dist_env_and_memory

        cleanup_dist_env_and_memory()
    except ImportError:  # older or absent vLLM: the gc above is all we can do
        pass


#: The process's engines.
POOL = EnginePool()
