"""The training loss over answer tokens only, in chunks, with metrics only on request: for TRL's SFT and DPO trainers.

TRL 1.16 already avoids the full logits tensor: its trainers patch the model with a fused LM head
(``add_fused_lm_head``; called as ``model(..., labels=labels, fused_lm_head=True)``) that returns per-token
log-probabilities computed in vocabulary tiles. Off CUDA it falls short in four ways, which made bf16 SFT on CPU
only 1.5-1.9x float32 SFT while bf16 matmuls are 4x (BENCHMARKS.md, SFT throughput and Roofline):

1. it scores *every* position, prompt and padding included, not only the answer tokens the loss uses;
2. its backward runs the LM head again (a third vocabulary-sized matmul) and, on CPU, does the gradient products
   in float32 (``addmm_`` on upcast copies): the bf16 fast path is lost for the largest matmul of a small model;
3. the SFT trainer asks for entropy and top-1 accuracy at every step: more passes over every logits tile;
4. padded batches run padding through every layer.

Here, ``install_answer_head(model)`` puts a second fused head in front of TRL's that (1) gathers the answer
positions first, (2) computes in one pass per chunk of answer tokens the log-probability and its gradient with
respect to the hidden state, ``d log p / d h = (onehot - softmax) W``, so the backward is a scale of a saved
``tokens x hidden`` tensor (no logits saved, none recomputed; the weight gradient, needed only when the LM head
trains, is recomputed chunk by chunk), and (3) computes entropy / top-1 only when asked. ``AnswerLossMixin`` for
``SFTTrainer`` uses it, skips the metrics unless ``answer_metrics`` is set, and (4) runs each batch without its
padding and with the prefixes its rows share run once (its rows' own tokens laid end to end in one row and attended
span by span: ``models.shared_prefix``, ``models.segment_attention``; the batches themselves are unchanged). The
loss equals TRL's (tests/test_sft_loss.py).

DPO: TRL's ``DPOTrainer`` calls the same fused head (policy and reference), so ``install_answer_head(trainer.model,
metrics=("entropy", "mean_logits", "is_top1"), padding_free=True)`` after building the trainer gives it the same
savings, (4) included: the head runs each right-padded chosen + rejected batch without its padding, and each
prompt once for its chosen and rejected answers (``shared_prefix``); with
``precompute_ref_log_probs=True`` TRL computes the reference log-probabilities once, through this head, before
training. ``sequence_logprobs`` computes per-sequence answer log-probabilities for any other use.
"""

from __future__ import annotations

import functools
import types
from typing import Any

import torch

from iteralign.models import shared_prefix
from iteralign.models.segment_attention import use_segment_attention

#: Floats per logits chunk (answer tokens x vocabulary): 16 MB, under glibc's largest mmap threshold (32 MB), so a
#: chunk's buffers are reused from the heap instead of being mapped and page-faulted in afresh for every chunk.
CHUNK_FLOATS = 4 * 2**20
METRICS = ("entropy", "mean_logits", "is_top1")


class AnswerLogProbs(torch.autograd.Function):
    """``log p(target | hidden)`` per row of ``hidden`` (answer positions only), without keeping any logits.

    Forward, per chunk of rows: logits in the compute dtype (bf16 under autocast), float32 log-softmax, the target's
    log-probability and, if ``hidden`` needs a gradient, ``(onehot - p) W`` saved for the backward. Extra outputs
    (entropy, mean logit, is-top-1) are computed only when listed in ``metrics`` and carry no gradient.
    """

    @staticmethod
    def forward(ctx, hidden, weight, bias, targets, metrics: tuple[str, ...] = ()):  # type: ignore[override]
        device = hidden.device
        dtype = torch.get_autocast_dtype(device.type) if torch.is_autocast_enabled(device.type) else hidden.dtype
        n, vocab = hidden.shape[0], weight.shape[0]
        step = max(1, CHUNK_FLOATS // vocab)
        logp = torch.empty(n, device=device, dtype=torch.float32)
        extra = {m: torch.empty(n, device=device, dtype=torch.bool if m == "is_top1" else torch.float32)
                 for m in metrics}
        jac = hidden.new_empty(hidden.shape, dtype=dtype) if ctx.needs_input_grad[0] else None
        with torch.autocast(device.type, enabled=False):
            w = weight.to(dtype)
            b = None if bias is None else bias.to(dtype)
            rows_max = min(step, n)  # logits (then softmax - onehot); float32 logits; log-softmax (then softmax)
            bufs = (torch.empty(rows_max, vocab, device=device, dtype=dtype),
                    *torch.empty(2, rows_max, vocab, device=device, dtype=torch.float32))
            for start in range(0, n, step):
                rows = slice(start, min(start + step, n))
                _chunk(hidden[rows].to(dtype), w, b, targets[rows], logp[rows], {m: e[rows] for m, e in
                       extra.items()}, None if jac is None else jac[rows], bufs)
        ctx.save_for_backward(jac, hidden, weight, bias, targets)
        ctx.step, ctx.dtype = step, dtype
        ctx.mark_non_differentiable(*extra.values())
        ctx.set_materialize_grads(False)
        return (logp, *extra.values())

    @staticmethod
    def backward(ctx, grad_logp, *_):  # type: ignore[override]
        jac, hidden, weight, bias, targets = ctx.saved_tensors
        if grad_logp is None:
            return None, None, None, None, None
        grad_hidden = (jac * grad_logp[:, None].to(jac.dtype)).to(hidden.dtype) if jac is not None else None
        grad_weight = grad_bias = None
        if ctx.needs_input_grad[1] or ctx.needs_input_grad[2]:  # the LM head trains (full fine-tuning): recompute
            grad_weight, grad_bias = _head_grads(hidden, weight, bias, targets, grad_logp, ctx.step, ctx.dtype)
        return (grad_hidden, grad_weight if ctx.needs_input_grad[1] else None,
                grad_bias if ctx.needs_input_grad[2] else None, None, None)


def _chunk(h, w, b, targets, logp_out, extra_out, jac_out, bufs) -> None:
    """One chunk of answer rows: target log-probabilities, requested metrics and ``d log p / d h`` in place.

    ``bufs``: a compute-dtype and two float32 buffers of (at least) rows x vocabulary, reused by every chunk:
    tensors this large come fresh from the system each time otherwise (glibc maps them anew), and touching their
    pages cost more than the softmax itself (BENCHMARKS.md, "LoRA steps without dropout or casts").
    """
    z, z32, logp = (buf[: h.shape[0]] for buf in bufs)
    if b is None:
        torch.mm(h, w.t(), out=z)
    else:
        torch.addmm(b, h, w.t(), out=z)
    torch.log_softmax(z32.copy_(z), dim=-1, out=logp)
    logp_out.copy_(logp.gather(1, targets[:, None]).squeeze(1))
    if "mean_logits" in extra_out:
        extra_out["mean_logits"].copy_(z32.mean(-1))
    if "is_top1" in extra_out:  # argmax is the first maximum: a tie with an earlier token is not top-1
        extra_out["is_top1"].copy_(logp.argmax(-1) == targets)
    if "entropy" not in extra_out and jac_out is None:
        return
    if "entropy" in extra_out:  # H = -sum(p log p)
        p = torch.exp(logp, out=z32)
        extra_out["entropy"].copy_(-(p * logp).sum(-1))
    else:
        p = logp.exp_()  # the log-probabilities are not needed any more: softmax in place
    if jac_out is not None:
        p[torch.arange(p.shape[0], device=p.device), targets] -= 1  # p - onehot = -(d log p / d z)
        torch.mm(z.copy_(p), w, out=jac_out).neg_()  # the logits are not needed any more: their buffer takes p


def _head_grads(hidden, weight, bias, targets, grad_logp, step, dtype):
    """Gradients of the LM head's weight (and bias) for ``sum(grad_logp * log p)``, chunk by chunk (float32 sums)."""
    grad_w = torch.zeros(weight.shape, device=weight.device, dtype=torch.float32)
    grad_b = None if bias is None else torch.zeros(bias.shape, device=weight.device, dtype=torch.float32)
    w = weight.to(dtype)
    with torch.autocast(hidden.device.type, enabled=False):
        for start in range(0, hidden.shape[0], step):
            rows = slice(start, start + step)
            h, t = hidden[rows].to(dtype), targets[rows]
            z = torch.mm(h, w.t()).float() if bias is None else torch.addmm(bias.to(dtype), h, w.t()).float()
            g = z.softmax(-1).neg_()
            g[torch.arange(g.shape[0], device=g.device), t] += 1  # d log p / d z = onehot - p
            g.mul_(grad_logp[rows, None].float())
            grad_w.add_(torch.mm(g.t().to(dtype), h).float())
            if grad_b is not None:
                grad_b.add_(g.sum(0))
    return grad_w.to(weight.dtype), None if grad_b is None else grad_b.to(bias.dtype)


def answer_logprobs(hidden, weight, bias, targets, metrics: tuple[str, ...] = ()) -> tuple[Any, dict]:
    """Log-probabilities of ``targets`` (one per row of ``hidden``: answer positions only) and requested metrics."""
    logp, *extra = AnswerLogProbs.apply(hidden, weight, bias, targets, tuple(metrics))
    return logp, dict(zip(metrics, extra))


def _plain_head(config: Any) -> bool:
    """True when the LM head is a plain projection (no logit scaling or soft-capping), which is all we implement."""
    text = config.get_text_config()
    scale = [getattr(text, k, None) for k in ("logit_scale", "output_multiplier", "lm_head_multiplier",
                                               "logits_scaling", "final_logit_softcapping")]
    return all(v is None for v in scale) and not getattr(text, "output_router_logits", False)


def install_answer_head(model: Any, metrics: tuple[str, ...] = (), padding_free: bool = False) -> bool:
    """Serve ``model(..., labels=labels, fused_lm_head=True)`` (TRL's fused-head call) from answer positions only.

    ``model`` is the trainer's model (a PEFT model or a plain one); its base causal LM's ``forward`` is wrapped in
    front of whatever TRL installed, which still serves every other call (generation, plain forwards, shifted
    labels under sequence parallelism). ``metrics``: per-token extras to compute (``METRICS``); TRL's SFT trainer
    needs ``entropy`` and ``is_top1`` unless ``AnswerLossMixin`` skips them, its DPO trainer all three.
    ``padding_free``: a padded batch (TRL's DPO collator) runs through the model without its padding and with the
    prefixes its rows share run once (``padded_hidden``); the outputs keep the batch's shape. Returns False (nothing
    installed) for heads with logit scaling or soft-capping.
    """
    from trl.trainer.utils import FusedCausalLMOutput

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    if not _plain_head(base.config) or any(m not in METRICS for m in metrics):
        return False
    inner = base.forward  # TRL's fused forward (or the model's own)

    @functools.wraps(type(base).forward)
    def forward(self, *args, fused_lm_head=False, labels=None, shift_labels=None, num_items_in_batch=None, **kw):
        if not fused_lm_head or shift_labels is not None or labels is None:
            return inner(*args, fused_lm_head=fused_lm_head, labels=labels, shift_labels=shift_labels,
                         num_items_in_batch=num_items_in_batch, **kw)
        kw["use_cache"] = False
        if padding_free and not args and packable(kw):
            hidden = padded_hidden(self.base_model, kw)[:, :-1]
        else:
            hidden = self.base_model(*args, **kw).last_hidden_state[:, :-1]
        targets = labels[:, 1:]
        mask = targets != -100
        head = self.get_output_embeddings()
        logp, extra = answer_logprobs(hidden[mask], head.weight, head.bias, targets[mask], metrics)
        # masked_scatter keeps the graph connected when a batch has no answer token (a differentiable zero)
        full = {k: v.new_zeros(mask.shape).masked_scatter(mask, v) for k, v in {"log_probs": logp, **extra}.items()}
        denom = mask.sum().clamp(min=1) if num_items_in_batch is None else num_items_in_batch
        return FusedCausalLMOutput(loss=-full["log_probs"].sum() / denom, label_mask=mask, **full)

    base.forward = types.MethodType(forward, base)
    return True


def sequence_logprobs(model: Any, input_ids: Any, attention_mask: Any, answer_mask: Any) -> Any:
    """Sum of each row's answer-token log-probabilities (``answer_mask`` 1 on answer tokens), no gradient: e.g. a
    DPO reference's chosen/rejected log-probabilities, computed once and stored. Needs ``install_answer_head``."""
    labels = input_ids.masked_fill(answer_mask == 0, -100)
    with torch.no_grad():
        out = model(input_ids=input_ids, attention_mask=attention_mask, labels=labels, fused_lm_head=True)
    return out.log_probs.sum(-1)


#: The per-token inputs ``padded_hidden`` lays end to end itself (the ids) or replaces (the mask, by positions).
ROW_KEYS = ("input_ids", "attention_mask", "position_ids")


def row_positions(lengths: Any, starts: Any) -> Any:
    """Position ids of rows of ``lengths`` tokens laid end to end from ``starts``: restarting at 0 each row."""
    return torch.arange(int(lengths.sum()), device=lengths.device) - torch.repeat_interleave(starts, lengths)


def row_starts(keep: Any) -> tuple[Any, Any]:
    """Each row's token count and where it starts once the rows of a padded batch (``keep``) are laid end to end."""
    lengths = keep.sum(1)
    return lengths, torch.cumsum(lengths, 0) - lengths


def packable(kw: dict) -> bool:
    """Whether ``padded_hidden`` can run this batch: it has an attention mask, and no per-token input besides the ids
    and the mask (token types, image positions, ... would have to be laid out too)."""
    mask = kw.get("attention_mask")
    if mask is None:
        return False
    return not any(isinstance(v, torch.Tensor) and v.shape[:2] == mask.shape
                   for k, v in kw.items() if k not in ROW_KEYS)


def padded_hidden(body: Any, kw: dict) -> Any:
    """The last hidden states of a padded batch, computed without its padding and with the prefixes its rows share
    run once (``shared_prefix``): each row's own tokens end to end in one row, attended span by span
    (``segment_attention``), laid back in the batch's shape (zeros at the padding, which no target reads)."""
    keep = kw["attention_mask"].bool()
    rest = {k: v for k, v in kw.items() if k not in ROW_KEYS}
    plan = shared_prefix.layout(kw["input_ids"], keep)
    row = body(input_ids=plan.ids, position_ids=plan.positions, segment_tree=plan.spans,
               **rest).last_hidden_state[0]
    return shared_prefix.rows(plan, row, keep)


def unpad(inputs: dict) -> dict:
    """A padded batch as one row without padding: rows end to end, position ids restarting at each row (transformers
    then masks attention block by block), the first label of each row ignored (it would be predicted from the end of
    the previous row). Batches that carry no ``attention_mask`` (already packed) are returned as they are."""
    mask = inputs.get("attention_mask")
    if mask is None or "labels" not in inputs or bool(mask.all()):
        return inputs
    keep = mask.bool()
    lengths, starts = row_starts(keep)
    positions = row_positions(lengths, starts)
    labels = inputs["labels"][keep].clone()
    labels[starts] = -100
    out = {k: v for k, v in inputs.items() if k not in ("input_ids", "attention_mask", "labels", "position_ids")}
    return out | {"input_ids": inputs["input_ids"][keep][None], "labels": labels[None],
                  "position_ids": positions[None]}


class AnswerLossMixin:
    """Put before TRL's ``SFTTrainer`` in a subclass: the answer-only chunked loss, no padding, the prefixes rows
    share (the chat template's header) run once, metrics on request.

    ``answer_metrics = True`` (class or instance attribute) keeps TRL's per-step ``entropy`` and
    ``mean_token_accuracy`` (computed by our head); otherwise they are not computed. Configurations this does not
    cover (label smoothing, custom loss functions, MoE auxiliary losses, other loss types, sequence parallelism)
    are left to TRL unchanged.
    """

    answer_metrics: bool = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # the head drops each batch's padding and runs shared prefixes once where every sequence can be attended on
        # its own (segment_attention); elsewhere the rows are laid end to end before the call (``unpad``)
        self._padding_free = use_segment_attention(self.model)
        self._answer_head = install_answer_head(self.model, ("entropy", "is_top1") if self.answer_metrics else (),
                                                padding_free=self._padding_free)

    def _answer_loss_applies(self, model) -> bool:
        parallel = getattr(self.accelerator, "parallelism_config", None)
        return (self._answer_head and model.training and not getattr(self, "aux_loss_enabled", False)
                and self.compute_loss_func is None and self.label_smoother is None
                and getattr(self.args, "loss_type", "nll") == "nll" and not getattr(parallel, "sp_enabled", False))

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if not self._answer_loss_applies(model):
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        if self.answer_metrics or return_outputs:
            return super().compute_loss(model, unpad(inputs), return_outputs, num_items_in_batch)
        inputs = (inputs if self._padding_free else unpad(inputs)) | {"use_cache": False}
        out = model(**inputs, fused_lm_head=True)
        count = out.label_mask.sum() if num_items_in_batch is None else num_items_in_batch
        loss = -out.log_probs.sum() / torch.as_tensor(count).clamp(min=1)
        if self.args.average_tokens_across_devices and num_items_in_batch is not None:
            loss = loss * (self.accelerator.num_processes // self.get_tp_size())
        mask = inputs.get("attention_mask")  # tokens that are not padding
        tokens = mask.sum() if mask is not None else torch.tensor(inputs["input_ids"].numel(),
                                                                  device=inputs["input_ids"].device)
        self._total_train_tokens += self.accelerator.gather_for_metrics(tokens).sum().item() // self._tp_size
        self._metrics["train"]["num_tokens"] = [self._total_train_tokens]
        return loss


class AnswerHeadMixin:
    """Put before TRL's ``DPOTrainer`` (or another trainer that calls the fused head): our head for the policy, the
    separate reference model if any, and the reference log-probabilities that ``precompute_ref_log_probs=True``
    computes once, inside ``DPOTrainer.__init__``, right after TRL installed its own head."""

    answer_metrics: tuple[str, ...] = METRICS  # DPOTrainer logs entropy, mean logits and top-1 accuracy

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._install_answer_heads()

    def _install_answer_heads(self) -> None:
        if not getattr(self, "_answer_head", False):  # padding-free when each sequence can be attended on its own
            free = use_segment_attention(self.model)
            self._answer_head = install_answer_head(self.model, self.answer_metrics, padding_free=free)
            if getattr(self, "ref_model", None) is not None:
                install_answer_head(self.ref_model, padding_free=use_segment_attention(self.ref_model))

    def _precompute_ref_logps(self, *args, **kwargs):  # TRL's hook, called from __init__ when precomputing
        self._install_answer_heads()
        return super()._precompute_ref_logps(*args, **kwargs)


@functools.cache
def answer_head_trainer(trainer_cls: type) -> type:
    """``trainer_cls`` (TRL's ``DPOTrainer``) with ``AnswerHeadMixin`` in front; same arguments."""
    return type(f"AnswerHead{trainer_cls.__name__}", (AnswerHeadMixin, trainer_cls), {})


@functools.cache
def answer_loss_trainer(trainer_cls: type, metrics: bool = False) -> type:
    """``trainer_cls`` (TRL's ``SFTTrainer``) with ``AnswerLossMixin`` in front: ``answer_loss_trainer(SFTTrainer)(...)``
    takes the same arguments. ``metrics=True`` logs TRL's per-step entropy and token accuracy (extra passes)."""
    return type(f"AnswerLoss{trainer_cls.__name__}", (AnswerLossMixin, trainer_cls), {"answer_metrics": metrics})
