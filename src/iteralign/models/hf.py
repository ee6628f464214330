"""The transformers backend: chat generation and log-likelihood scoring with a local or hub causal LM.

``HFModel.load(path_or_hub_id, cfg)`` loads weights with ``AutoModelForCausalLM`` (optionally a PEFT LoRA adapter on
top) and the tokenizer with ``AutoTokenizer``. Generation is batched: prompts are sorted by length, cut into batches
of ``cfg.batch_size``, left-padded with an attention mask, and answered by one ``hf_decode.decode`` per batch;
results come back in the caller's order. Prefixes that the rows of a batch share (the judge's system message, the
reviser's principles) are read once in the prefill (``hf_prefill``). Greedy batched output equals one-at-a-time
output in float32 (tested).

Scoring (``loglikelihood``) tokenizes like lm-evaluation-harness (see ``hf_scoring``) so our multiple-choice numbers
are comparable with published ones.

Why not a pipeline: ``pipeline("text-generation")`` pads and batches too, but hides the token accounting and the
finish reason, and cannot take our frequency-penalty processor.
"""

from __future__ import annotations

import gc
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from iteralign.models.base import ChatModel, ModelConfig, Scorer
from iteralign.models.chat_format import encode_chat, render_plain, stop_strings  # noqa: F401 (re-exported)
from iteralign.models.devices import resolve_device, resolve_dtype
from iteralign.models.hf_labels import Pool, hidden_features, label_logprobs
from iteralign.models.hf_linear import pack_linears
from iteralign.models.hf_prefill import tree_inputs
from iteralign.models.hf_prefix import score_requests_shared
from iteralign.models.hf_weights import local_identity, weights_fingerprint
from iteralign.types import Completion, Conversation, FinishReason, GenerationParams, LoglikelihoodRequest

if TYPE_CHECKING:  # pragma: no cover
    import torch

#: How many openings' keys and values ``hidden_states`` keeps (a judge asks one or two questions).
MAX_OPENINGS = 8
#: How many stop strings' criteria ``generate`` keeps, the least recently used dropped (a server's clients may send
#: any stop strings).
MAX_STOP_CRITERIA = 8


class FrequencyPenalty:
    """OpenAI-style frequency penalty as a transformers LogitsProcessor (transformers has none).

    Subtracts ``penalty * count`` from each token's logit, counting occurrences in the *generated* part only
    (columns from ``prompt_len`` on), as the OpenAI API does. It runs after transformers' own processors.
    """

    def __init__(self, penalty: float, prompt_len: int):
        self.penalty, self.prompt_len = penalty, prompt_len

    def __call__(self, input_ids: "torch.LongTensor", scores: "torch.FloatTensor") -> "torch.FloatTensor":
        generated = input_ids[:, self.prompt_len :]
        if generated.shape[1] == 0:
            return scores
        counts = scores.new_zeros(scores.shape).scatter_add_(1, generated, scores.new_ones(generated.shape))
        return scores - self.penalty * counts


class HFModel(ChatModel, Scorer):
    """A transformers causal LM answering conversations and scoring continuations."""

    def __init__(self, model: Any, tokenizer: Any, cfg: ModelConfig, name: str, identity: dict[str, Any],
                 chat_template: str | None = None):
        self._model, self._tokenizer, self.cfg, self.name = model, tokenizer, cfg, name
        self._identity = identity
        if chat_template is not None:
            tokenizer.chat_template = chat_template
        if tokenizer.pad_token is None:  # e.g. Llama: pad with eos; the attention mask hides it
            tokenizer.pad_token = tokenizer.eos_token
        self._eos_ids = self._collect_eos_ids()
        self._openings: dict[tuple, Any] = {}  # hidden_states' openings: keys and values by their tokens
        self._stop_criteria: dict[tuple[str, ...], Any] = {}  # StopStringCriteria by stop strings (see _finisher)

    @classmethod
    def load(cls, path_or_hub_id: str, cfg: ModelConfig, name: str | None = None,
             identity: dict[str, Any] | None = None) -> "HFModel":
        """Load weights (+ optional LoRA adapter) and tokenizer from a local directory or a hub id. ``identity``
        is the backend's (computed without loading); by default that of an ``hf:`` model at this path."""
        from transformers import AutoModelForCausalLM, AutoTokenizer

        template = None
        if cfg.chat_template:
            template_path = Path(cfg.chat_template)
            if not template_path.is_file():
                raise FileNotFoundError(f"chat_template: no such file {template_path} (model {cfg.spec})")
            template = template_path.read_text(encoding="utf-8")
        device = resolve_device(cfg.device)
        tokenizer = AutoTokenizer.from_pretrained(path_or_hub_id, trust_remote_code=cfg.trust_remote_code)
        model = AutoModelForCausalLM.from_pretrained(
            path_or_hub_id, dtype=resolve_dtype(cfg.dtype, device), trust_remote_code=cfg.trust_remote_code,
            use_safetensors=True,  # weights only from safetensors: never unpickle a checkpoint
        ).to(device)
        if identity is None:
            identity = local_identity("hf", None if Path(path_or_hub_id).exists() else path_or_hub_id,
                                      weights_fingerprint(path_or_hub_id), cfg, path_or_hub_id)
        if cfg.adapter:
            from peft import PeftModel

            # Merged into the weights: inference is then as fast as the base model (the adapter file is untouched).
            model = PeftModel.from_pretrained(model, cfg.adapter).merge_and_unload()
        model.eval()
        if device == "cpu":
            pack_linears(model)  # oneDNN's packed weights where they are faster (see hf_linear)
        return cls(model, tokenizer, cfg, name or f"hf:{path_or_hub_id}", identity, template)

    # -- what SFT and evals reuse ------------------------------------------------------------------------------
    @property
    def model(self) -> Any:
        """The underlying ``PreTrainedModel`` (or ``PeftModel``), e.g. for the SFT stage."""
        return self._model

    @property
    def tokenizer(self) -> Any:
        """The tokenizer, with its pad token set and the configured chat template applied."""
        return self._tokenizer

    def identity(self) -> dict[str, Any]:
        """Weights and adapter fingerprints, template, dtype and device: all that changes outputs (see
        ``hf_weights.local_identity``; computed from files before the weights were loaded)."""
        return dict(self._identity)

    def release(self) -> None:
        """Drop the model and free its memory (CPU and GPU); the object is unusable afterwards."""
        import torch

        self._model = None
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    close = release

    # -- generation --------------------------------------------------------------------------------------------
    def encode_chat(self, conversation: Conversation) -> list[int]:
        """Prompt token ids for a conversation (see the module-level ``encode_chat``)."""
        return encode_chat(self._tokenizer, conversation)

    def generate(self, conversations: list[Conversation], params: GenerationParams) -> list[Completion]:
        """Answer every conversation; batched by length, returned in the given order."""
        import torch

        prompts = [self.encode_chat(c) for c in conversations]
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]), reverse=True)
        results: list[Completion | None] = [None] * len(prompts)
        torch.manual_seed(params.seed)
        for start in range(0, len(order), self.cfg.batch_size):
            batch = order[start : start + self.cfg.batch_size]
            for i, completion in zip(batch, self._generate_batch([prompts[i] for i in batch], params)):
                results[i] = completion
        return results  # type: ignore[return-value]

    def generate_stream(self, conversation: Conversation, params: GenerationParams,
                        on_text: Callable[[str], None]) -> Completion:
        """Answer one conversation as ``generate`` does, calling ``on_text`` with each piece of text as soon as it is
        decoded (``iteralign serve``'s ``stream: true``). The returned completion is authoritative: the pieces may
        run past a stop string, where the completion's text is cut."""
        import torch
        from transformers import TextStreamer

        class _Streamer(TextStreamer):
            def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
                if text:
                    on_text(text)

        torch.manual_seed(params.seed)
        streamer = _Streamer(self._tokenizer, skip_prompt=True, skip_special_tokens=True)
        return self._generate_batch([self.encode_chat(conversation)], params, streamer=streamer)[0]

    def _stop_strings(self, params: GenerationParams) -> list[str]:
        return stop_strings(self._tokenizer, params)

    def _generate_batch(self, prompts: list[list[int]], params: GenerationParams,
                        streamer: Any = None) -> list[Completion]:
        from iteralign.models.hf_decode import decode, new_cache

        tok = self._tokenizer
        capacity = max(map(len, prompts)) + params.max_new_tokens
        # prefixes that rows share (the judge's system message, the reviser's principles) read once (hf_prefill)
        enc = tree_inputs(self._model, tok.pad_token_id, prompts, capacity)
        if enc is None:
            enc = tok.pad({"input_ids": prompts}, padding=True, padding_side="left", return_tensors="pt")
            enc = {k: v.to(self._model.device) for k, v in enc.items()}
            enc["cache"] = new_cache(self._model, capacity)
        stops = self._stop_strings(params)
        if streamer is not None:  # as generate does: the prompt first (skipped), then each new token, then the end
            streamer.put(enc["input_ids"][:1].cpu())
        new = decode(self._model, enc["input_ids"], enc["attention_mask"], enc["cache"], params.max_new_tokens,
                     self._chooser(params, enc["input_ids"].shape[1]), self._finisher(stops),
                     on_token=None if streamer is None else lambda token: streamer.put(token.cpu()))
        if streamer is not None:
            streamer.end()
        return [self._completion(ids, len(p), stops) for ids, p in zip(new, prompts)]

    def _chooser(self, params: GenerationParams, width: int):
        """Next-token choice: transformers' processors (as ``generate`` orders them), then argmax or sampling."""
        import torch
        from transformers import (LogitsProcessorList, RepetitionPenaltyLogitsProcessor, TemperatureLogitsWarper,
                                  TopPLogitsWarper)

        sampling = params.temperature > 0
        procs = LogitsProcessorList()
        if params.repetition_penalty != 1.0:
            procs.append(RepetitionPenaltyLogitsProcessor(params.repetition_penalty))
        if sampling:
            procs.append(TemperatureLogitsWarper(params.temperature))
            if params.top_p < 1.0:
                procs.append(TopPLogitsWarper(params.top_p))
        if params.frequency_penalty:  # a caller's processor: generate ran it after its own
            procs.append(FrequencyPenalty(params.frequency_penalty, width))

        def choose(seqs: "torch.Tensor", logits: "torch.Tensor") -> "torch.Tensor":
            scores = procs(seqs, logits)
            if sampling:
                return torch.multinomial(torch.softmax(scores, dim=-1), num_samples=1).squeeze(1)
            return scores.argmax(dim=-1)

        return choose

    def _finisher(self, stops: list[str]):
        """Which rows end with the token just chosen: an end-of-turn or pad id (``_completion`` cuts there anyway)
        or a completed stop string (transformers' ``StopStringCriteria``, built once per stop strings: building one
        reads and sorts the whole vocabulary, 0.7 s for Qwen2.5's 151k tokens, on every call before; it keeps no
        state between calls; the ``MAX_STOP_CRITERIA`` most recently used are kept)."""
        import torch

        ends = torch.tensor(sorted({*self._eos_ids, self._tokenizer.pad_token_id}), device=self._model.device)
        criterion = None
        if stops:
            from transformers import StopStringCriteria

            key = tuple(stops)
            criterion = self._stop_criteria.pop(key, None) or StopStringCriteria(self._tokenizer, list(key))
            self._stop_criteria[key] = criterion  # the most recently used last
            if len(self._stop_criteria) > MAX_STOP_CRITERIA:
                del self._stop_criteria[next(iter(self._stop_criteria))]

        def finished(seqs: "torch.Tensor", token: "torch.Tensor") -> "torch.Tensor":
            done = torch.isin(token, ends)
            return done | criterion(seqs, None).to(done.device) if criterion is not None else done

        return finished

    def _completion(self, new_ids: list[int], prompt_tokens: int, stops: list[str]) -> Completion:
        """Cut the padding after eos, decode, cut before the first stop string, and say why generation ended."""
        ends = {*self._eos_ids, self._tokenizer.pad_token_id}
        end = next((k for k, t in enumerate(new_ids) if t in ends), None)
        kept = new_ids if end is None else new_ids[:end]
        text = self._tokenizer.decode(kept, skip_special_tokens=True)
        cut = min((text.find(s) for s in stops if s in text), default=-1)
        # A row stopped by a stop string is filled with pad, which may equal eos: that fill is not a generated eos.
        eos_hit = end is not None and new_ids[end] in self._eos_ids and cut < 0
        reason: FinishReason = "stop" if eos_hit or cut >= 0 or end is not None else "length"
        return Completion(text=text[:cut] if cut >= 0 else text, finish_reason=reason,
                          prompt_tokens=prompt_tokens, completion_tokens=len(kept) + int(eos_hit))

    def _collect_eos_ids(self) -> set[int]:
        """Every id that ends a turn: the generation config's eos id(s) and the tokenizer's eos."""
        ids = getattr(self._model.generation_config, "eos_token_id", None)
        ids = set(ids if isinstance(ids, list) else [ids] if ids is not None else [])
        if self._tokenizer.eos_token_id is not None:
            ids.add(self._tokenizer.eos_token_id)
        return ids

    # -- scoring -----------------------------------------------------------------------------------------------
    def loglikelihood(self, requests: list[LoglikelihoodRequest]) -> list[float]:
        """Sum of continuation-token log-probs given the context (lm-eval tokenization; shared contexts read once)."""
        return score_requests_shared(self._model, self._tokenizer, requests, self.cfg.batch_size)

    def label_logprobs(self, conversations: list[Conversation], labels: list[str]) -> list[dict[str, float]]:
        """Per conversation, the log-probability of each label's first token as the answer's first token (one
        forward pass each, batched; see ``hf_labels``)."""
        prompts = [self.encode_chat(c) for c in conversations]
        return label_logprobs(self._model, self._tokenizer, prompts, labels, self.cfg.batch_size)

    def hidden_states(self, conversations: list[Conversation], layer: int | Sequence[int],
                      pool: Sequence[Pool] = ("last",), skip: int = 0,
                      opening: Conversation | None = None) -> list[list[float]]:
        """Per conversation (chat template + generation cue), the output of decoder ``layer`` (or of several, side by
        side) at the last token, or pooled over the tokens from ``skip`` on; with ``opening`` (the conversations'
        question with its blanks empty), each conversation alone after the part it shares with it, run once for all
        calls (a few openings are kept; ``hf_labels.hidden_features``)."""
        prompts = [self.encode_chat(c) for c in conversations]
        opened = self.encode_chat(opening) if opening is not None else None
        if len(self._openings) > MAX_OPENINGS:
            self._openings.clear()
        return hidden_features(self._model, self._tokenizer, prompts, layer, self.cfg.batch_size, pool, skip, opened,
                               self._openings)
