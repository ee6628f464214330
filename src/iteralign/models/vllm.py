"""The vLLM backend: chat generation and log-likelihood scoring on vLLM's offline ``LLM`` engine (GPU).

``vllm:<hub id or local dir>`` loads the weights once into an ``LLM`` engine (``tensor_parallel_size`` GPUs per
model, from the model config; any other engine argument through ``engine_args``). A tuned target is the same base
plus a LoRA adapter, served through a ``LoRARequest`` (``enable_lora=True``, ``max_lora_rank`` read from the
adapter's config) on the engine already loaded for that base (``vllm_engines``: one engine per base model, kept
while SFT runs when its memory is capped), so each iteration only swaps a few megabytes.

Prompts are rendered by the same function as the transformers backend (``hf.encode_chat``: chat template, plain
fallback, assistant prefill) and sent as token ids, so both backends see the same prompt tokens. Scoring uses
``prompt_logprobs`` and the lm-evaluation-harness context/continuation split of ``hf_scoring.encode_pair``; like
lm-eval's own vLLM model, it asks for one generated token and reads the log-probs vLLM reports for the prompt.

vLLM is an optional extra (``pip install 'iteralign[vllm]'``) imported only when a ``vllm:`` model is loaded. The
engine and the vLLM module can be passed in (``engine=``, ``api=``), which is how the CPU tests check this glue
with a hand-written fake engine.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from iteralign.models.base import ChatModel, ModelConfig, Scorer
from iteralign.models.chat_format import encode_chat, stop_strings
from iteralign.models.devices import resolve_dtype
from iteralign.models.hf_scoring import encode_pair
from iteralign.models.hf_weights import local_identity, weights_fingerprint
from iteralign.models.vllm_engines import POOL
from iteralign.types import Completion, Conversation, GenerationParams, LoglikelihoodRequest

#: The LoRA ranks vLLM accepts for ``max_lora_rank``; an adapter's rank is rounded up to the next one.
VLLM_LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)
#: The rank an engine loaded without an adapter is built to serve later (a larger adapter reloads the engine).
DEFAULT_LORA_RANK = 64

MISSING_VLLM = (
    "the vllm: backend needs vLLM, an optional extra that runs on NVIDIA GPUs: pip install 'iteralign[vllm]' "
    "(model {spec!r}). Without a GPU use hf:/offline: for local models or openai:<model>@<url> for a vLLM server."
)


def import_vllm(spec: str) -> Any:
    """The ``vllm`` module, or an ImportError that names the extra to install."""
    try:
        import vllm
    except ImportError as exc:
        raise ImportError(MISSING_VLLM.format(spec=spec)) from exc
    return vllm


def lora_rank(adapter_dir: str) -> int:
    """The ``max_lora_rank`` an adapter needs: its ``r`` (or largest ``rank_pattern`` value), rounded up to a rank
    vLLM accepts."""
    path = Path(adapter_dir) / "adapter_config.json"
    if not path.is_file():
        raise FileNotFoundError(f"adapter: {path} not found (a PEFT LoRA adapter directory is expected)")
    config = json.loads(path.read_text(encoding="utf-8"))
    rank = max([int(config.get("r", 8)), *map(int, (config.get("rank_pattern") or {}).values())])
    fitting = [r for r in VLLM_LORA_RANKS if r >= rank]
    if not fitting:
        raise ValueError(f"adapter {adapter_dir}: LoRA rank {rank} exceeds vLLM's maximum {VLLM_LORA_RANKS[-1]}")
    return fitting[0]


def sampling_kwargs(params: GenerationParams, stops: list[str]) -> dict[str, Any]:
    """``GenerationParams`` in vLLM's ``SamplingParams`` names. Greedy is temperature 0 (top_p then has no effect);
    vLLM's frequency penalty counts generated tokens only (as OpenAI's and ours do); its repetition penalty is
    transformers' multiplicative one."""
    return {
        "n": 1, "max_tokens": params.max_new_tokens, "temperature": params.temperature,
        "top_p": params.top_p if params.temperature > 0 else 1.0, "seed": params.seed, "stop": stops,
        "frequency_penalty": params.frequency_penalty, "repetition_penalty": params.repetition_penalty,
        "skip_special_tokens": True,
    }


def continuation_logprob(prompt_logprobs: list, tokens: list[int], n_continuation: int) -> float:
    """Sum of the logged log-probs of the last ``n_continuation`` prompt tokens.

    ``prompt_logprobs[i]`` is vLLM's ``{token_id: Logprob}`` for prompt position ``i`` (``None`` at position 0); the
    actual token is always among its keys. Older vLLM versions stored floats instead of ``Logprob`` objects.
    """
    total = 0.0
    for position in range(len(tokens) - n_continuation, len(tokens)):
        entry = prompt_logprobs[position][tokens[position]]
        total += float(getattr(entry, "logprob", entry))
    return total


class VLLMModel(ChatModel, Scorer):
    """A model served by vLLM's offline engine, optionally with a LoRA adapter."""

    def __init__(self, name: str, cfg: ModelConfig, *, engine: Any = None, api: Any = None,
                 identity: dict[str, Any] | None = None) -> None:
        self.name, self.cfg = f"vllm:{name}", cfg
        self._path = name
        self._api = api or import_vllm(cfg.spec)
        self._identity = identity
        adapter = str(Path(cfg.adapter).resolve()) if cfg.adapter else None
        self._lora = self._api.LoRARequest(f"iteralign-{POOL.lora_id(adapter)}", POOL.lora_id(adapter), adapter) \
            if adapter else None
        # the pool's key, kept for close(): the engine's arguments as they were when it was taken
        self._pool_key = self.engine_kwargs() if engine is None else None
        self._engine = engine if engine is not None else POOL.get(self._api, self._pool_key)
        self._tokenizer = self._engine.get_tokenizer()
        if cfg.chat_template:
            template = Path(cfg.chat_template)
            if not template.is_file():
                raise FileNotFoundError(f"chat_template: no such file {template} (model {cfg.spec})")
            self._tokenizer.chat_template = template.read_text(encoding="utf-8")

    def engine_kwargs(self) -> dict[str, Any]:
        """Arguments of ``vllm.LLM``: path, dtype, tensor parallelism, LoRA, then the config's ``engine_args``."""
        kwargs: dict[str, Any] = {
            "model": self._path, "tensor_parallel_size": self.cfg.tensor_parallel_size,
            "dtype": str(resolve_dtype(self.cfg.dtype, "cuda")).removeprefix("torch."),
            "trust_remote_code": self.cfg.trust_remote_code, "seed": 0,
        }
        # LoRA always on, so that the engine serves the adapters of later iterations too (vllm_engines); an oracle
        # that never gets one can turn it off with engine_args: {enable_lora: false}
        rank = lora_rank(self.cfg.adapter) if self.cfg.adapter else DEFAULT_LORA_RANK
        kwargs.update(enable_lora=True, max_loras=1, max_lora_rank=rank)
        return kwargs | dict(self.cfg.engine_args)

    def identity(self) -> dict[str, Any]:
        """Weights and adapter fingerprints, template, dtype and tensor parallelism (``backends.VLLMBackend``)."""
        if self._identity is None:  # built directly rather than through the backend
            self._identity = local_identity("vllm", None, weights_fingerprint(self._path), self.cfg, self._path)
        return dict(self._identity)

    def close(self) -> None:
        """Let go of the engine: a shared one is shut down or kept as ``vllm_engines`` says."""
        engine, self._engine = self._engine, None
        if engine is not None and self._pool_key is not None:
            POOL.release(self._pool_key)

    def _run(self, token_ids: list[list[int]], sampling: Any) -> list[Any]:
        prompts = [{"prompt_token_ids": ids} for ids in token_ids]
        return self._engine.generate(prompts, sampling, use_tqdm=False, lora_request=self._lora)

    def generate(self, conversations: list[Conversation], params: GenerationParams) -> list[Completion]:
        """Answer every conversation in one engine call (vLLM batches and schedules); results in the given order."""
        prompts = [encode_chat(self._tokenizer, c) for c in conversations]
        if not prompts:
            return []
        sampling = self._api.SamplingParams(**sampling_kwargs(params, stop_strings(self._tokenizer, params)))
        results = []
        for ids, output in zip(prompts, self._run(prompts, sampling)):
            out = output.outputs[0]
            reason = "length" if out.finish_reason == "length" else "stop"  # vLLM also says "abort"
            results.append(Completion(text=out.text, finish_reason=reason, prompt_tokens=len(ids),
                                      completion_tokens=len(out.token_ids)))
        return results

    def label_logprobs(self, conversations: list[Conversation], labels: list[str]) -> list[dict[str, float]]:
        """Per conversation, the log-probability of each label's first token as the answer's first token: the prompt
        plus that token is scored with ``prompt_logprobs`` (one sequence per label; vLLM's prefix cache shares the
        prompt), the same values as the hf backend's ``label_logprobs``."""
        from iteralign.models.hf_labels import label_token_ids

        ids = label_token_ids(self._tokenizer, labels)
        prompts = [encode_chat(self._tokenizer, c) for c in conversations]
        if not prompts:
            return []
        seqs = [p + [t] for p in prompts for t in ids]
        sampling = self._api.SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=1, detokenize=False)
        scores = [continuation_logprob(o.prompt_logprobs, s, 1) for s, o in zip(seqs, self._run(seqs, sampling))]
        return [dict(zip(labels, scores[k * len(ids):(k + 1) * len(ids)])) for k in range(len(prompts))]

    def max_length(self) -> int:
        """Longest sequence the engine accepts (``max_model_len``)."""
        return int(self._engine.llm_engine.model_config.max_model_len)

    def loglikelihood(self, requests: list[LoglikelihoodRequest]) -> list[float]:
        """Sum of continuation-token log-probs given the context, from ``prompt_logprobs`` (lm-eval tokenization).

        Sequences longer than the engine's context lose tokens on the left (room is kept for the one generated
        token vLLM insists on); an empty continuation scores 0.
        """
        limit = self.max_length() - 1
        items = []  # (token ids, number of continuation tokens)
        for r in requests:
            context_ids, cont_ids = encode_pair(self._tokenizer, r.context, r.continuation)
            items.append(((context_ids + cont_ids)[-limit:], min(len(cont_ids), limit - 1)))
        scored = [i for i, (_, n) in enumerate(items) if n > 0]
        scores = [0.0] * len(items)
        if scored:
            sampling = self._api.SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=1, detokenize=False)
            outputs = self._run([items[i][0] for i in scored], sampling)
            for i, output in zip(scored, outputs):
                scores[i] = continuation_logprob(output.prompt_logprobs, *items[i])
        return scores
