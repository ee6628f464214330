"""The answer-only chunked loss (stages/sft_loss.py) and per-sequence attention (models/segment_attention.py).

The kernel against plain autograd on small tensors (values, metrics and gradients, several chunks); padding removal;
and, on the real 135M model with LoRA, our head + unpadding + segment attention against TRL's own fused head.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from iteralign.stages import sft_loss  # noqa: E402
from iteralign.models.segment_attention import segments  # noqa: E402
from iteralign.stages.sft_loss import answer_logprobs, unpad  # noqa: E402


def test_answer_logprobs_values_metrics_and_gradients_match_autograd(monkeypatch):
    monkeypatch.setattr(sft_loss, "CHUNK_FLOATS", 3 * 50)  # 3 rows per chunk: 11 rows make 4 chunks
    g = torch.Generator().manual_seed(0)
    hidden = torch.randn(11, 8, generator=g, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(50, 8, generator=g, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(50, generator=g, dtype=torch.float64, requires_grad=True)
    targets = torch.randint(0, 50, (11,), generator=g)
    targets[0] = (hidden[0] @ weight.t() + bias).argmax()  # at least one top-1 hit
    scale = torch.randn(11, generator=g, dtype=torch.float64)  # a non-uniform upstream gradient (as in DPO)

    logp, extra = answer_logprobs(hidden, weight, bias, targets, ("entropy", "mean_logits", "is_top1"))
    grads = torch.autograd.grad((logp * scale).sum(), (hidden, weight, bias))

    z = hidden @ weight.t() + bias
    ref = torch.log_softmax(z, -1)
    ref_logp = ref.gather(1, targets[:, None]).squeeze(1)
    ref_grads = torch.autograd.grad((ref_logp * scale).sum(), (hidden, weight, bias))
    assert torch.allclose(logp.double(), ref_logp, atol=1e-5)  # float32 accumulation of the log-sum-exp
    assert torch.allclose(extra["entropy"].double(), -(ref.exp() * ref).sum(-1), atol=1e-5)
    assert torch.allclose(extra["mean_logits"].double(), z.mean(-1), atol=1e-5)
    assert torch.equal(extra["is_top1"], z.argmax(-1) == targets) and bool(extra["is_top1"][0])
    for got, want in zip(grads, ref_grads):
        assert torch.allclose(got, want, atol=1e-5)


def test_answer_logprobs_without_gradient_keeps_nothing():
    hidden, weight = torch.randn(4, 8), torch.randn(20, 8)
    with torch.no_grad():
        logp, extra = answer_logprobs(hidden, weight, None, torch.tensor([1, 2, 3, 4]))
    assert logp.shape == (4,) and extra == {} and not logp.requires_grad


def test_unpad_lays_rows_end_to_end():
    ids = torch.tensor([[5, 6, 7, 0], [8, 9, 0, 0], [1, 2, 3, 4]])
    mask = (ids != 0).long()
    mask[2] = 1
    labels = torch.tensor([[-100, 6, 7, -100], [-100, 9, -100, -100], [1, 2, 3, 4]])
    out = unpad({"input_ids": ids, "attention_mask": mask, "labels": labels, "extra": "kept"})
    assert out["input_ids"].tolist() == [[5, 6, 7, 8, 9, 1, 2, 3, 4]]
    assert out["position_ids"].tolist() == [[0, 1, 2, 0, 1, 0, 1, 2, 3]]
    assert out["labels"].tolist() == [[-100, 6, 7, -100, 9, -100, 2, 3, 4]]  # a row's first label is never predicted
    assert "attention_mask" not in out and out["extra"] == "kept"
    assert segments(out["position_ids"]) == [(0, 3), (3, 5), (5, 9)]
    full = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}
    assert unpad(full) is full  # nothing to remove


@pytest.mark.model
def test_head_unpad_and_segments_equal_trl_fused_head_float32(smol_path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM
    from trl.trainer.utils import add_fused_lm_head

    from iteralign.models.segment_attention import use_segment_attention
    from iteralign.stages.sft_loss import install_answer_head

    def model(ours: bool):
        torch.manual_seed(0)
        m = AutoModelForCausalLM.from_pretrained(smol_path, dtype=torch.float32)
        add_fused_lm_head(m, outputs=("log_probs", "entropy", "is_top1"))  # what SFTTrainer installs
        m = get_peft_model(m, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
        if ours:
            assert install_answer_head(m, ("entropy", "is_top1")) and use_segment_attention(m)
        return m

    g = torch.Generator().manual_seed(1)
    ids = torch.randint(5, 4000, (3, 24), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 18:], mask[2, 12:] = 0, 0
    labels = ids.masked_fill(mask == 0, -100)
    labels[:, :6] = -100  # the prompt
    batch = {"input_ids": ids, "attention_mask": mask, "labels": labels}
    results = []
    for ours in (False, True):
        m = model(ours)
        out = m(**(unpad(batch) if ours else batch), fused_lm_head=True)
        out.loss.backward()
        grad = torch.cat([p.grad.flatten() for p in m.parameters() if p.requires_grad])
        results.append((out.loss, grad, out.entropy[out.label_mask].sum(), out.is_top1.sum()))
    (loss_t, grad_t, ent_t, top_t), (loss_o, grad_o, ent_o, top_o) = results
    assert torch.allclose(loss_o, loss_t, rtol=1e-6) and torch.allclose(ent_o, ent_t, rtol=1e-5)
    assert int(top_o) == int(top_t)
    # float32 summation order differs by CPU kernel: 1.1e-5 on an AVX2-only CPU, below 1e-5 with AVX-512
    assert float((grad_o - grad_t).norm() / grad_t.norm()) < 5e-5


def _head_runs(smol_path, ids, mask, labels, weights):
    """Per-token log-probabilities, entropy and gradient of the LoRA model's answer head on a padded batch, run
    plainly and padding-free, with the token count each run put through the model."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from iteralign.models.segment_attention import use_segment_attention
    from iteralign.stages.sft_loss import METRICS, install_answer_head

    results = []
    for free in (False, True):
        torch.manual_seed(0)
        m = AutoModelForCausalLM.from_pretrained(smol_path, dtype=torch.float32)
        m = get_peft_model(m, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
        assert install_answer_head(m, METRICS, padding_free=free) and use_segment_attention(m)
        seen = []
        m.get_input_embeddings().register_forward_hook(lambda mod, args, out: seen.append(args[0].numel()))
        out = m(input_ids=ids, attention_mask=mask, labels=labels, fused_lm_head=True)
        (out.log_probs.sum(1) * weights).sum().backward()
        grad = torch.cat([p.grad.flatten() for p in m.parameters() if p.requires_grad])
        results.append((out.log_probs, out.entropy, out.is_top1, grad, seen))
    return results


@pytest.mark.model
def test_padding_free_head_equals_the_padded_batch_float32(smol_path):
    """DPO's head (``padding_free``): a right-padded batch run without its padding gives the padded run's per-token
    log-probabilities, metrics and gradients."""
    g = torch.Generator().manual_seed(2)
    ids = torch.randint(5, 4000, (4, 20), generator=g)
    mask = torch.ones_like(ids)
    mask[0, 9:], mask[2, 15:], mask[3, 4:] = 0, 0, 0
    labels = ids.masked_fill(mask == 0, -100)
    labels[:, :3] = -100
    (lp_p, ent_p, top_p, grad_p, seen_p), (lp_f, ent_f, top_f, grad_f, seen_f) = _head_runs(
        smol_path, ids, mask, labels, torch.tensor([1.0, -2.0, 0.5, 3.0]))
    assert seen_p == [4 * 20] and seen_f == [int(mask.sum())]  # padding-free: no padding token read
    assert lp_f.shape == lp_p.shape == (4, 19) and torch.allclose(lp_f, lp_p, atol=1e-4)
    assert torch.allclose(ent_f, ent_p, atol=1e-4) and torch.equal(top_f, top_p)
    assert float((grad_f - grad_p).norm() / grad_p.norm()) < 1e-5


@pytest.mark.model
def test_prefixes_shared_by_rows_are_run_once_with_the_same_values_float32(smol_path):
    """A DPO-like batch: two prompts, each with a chosen and a rejected answer (rows 0/2 and 1/3, as TRL orders
    them), all four opening with the same 10-token header. Padding-free, each prompt runs once (and the header
    once): the same log-probabilities, metrics and gradients as the padded batch run whole."""
    g = torch.Generator().manual_seed(3)
    header, prompts = torch.randint(5, 4000, (10,), generator=g), torch.randint(5, 4000, (2, 12), generator=g)
    answers = torch.randint(5, 4000, (4, 9), generator=g)
    lengths = [9, 5, 7, 3]  # answer tokens per row
    ids = torch.zeros(4, 31, dtype=torch.long)
    mask = torch.zeros_like(ids)
    labels = torch.full_like(ids, -100)
    for row, (prompt, n) in enumerate(zip([0, 1, 0, 1], lengths)):
        seq = torch.cat([header, prompts[prompt], answers[row, :n]])
        ids[row, :len(seq)], mask[row, :len(seq)] = seq, 1
        labels[row, 22:len(seq)] = seq[22:]
    (lp_p, ent_p, top_p, grad_p, seen_p), (lp_f, ent_f, top_f, grad_f, seen_f) = _head_runs(
        smol_path, ids, mask, labels, torch.tensor([1.0, -2.0, 0.5, 3.0]))
    assert seen_p == [4 * 31] and seen_f == [10 + 2 * 12 + sum(lengths)]  # header once, each prompt once
    assert torch.allclose(lp_f, lp_p, atol=1e-4) and torch.allclose(ent_f, ent_p, atol=1e-4)
    assert torch.equal(top_f, top_p) and float((grad_f - grad_p).norm() / grad_p.norm()) < 1e-5


def test_layout_shares_the_longest_prefix_with_an_earlier_row():
    from iteralign.models.shared_prefix import MIN_SHARED, layout

    base = list(range(10, 10 + MIN_SHARED + 4))
    ids = torch.tensor([base + [1, 2], base[:MIN_SHARED] + [7, 7, 7, 7, 7, 7], base + [3, 0], [5] * 14])
    keep = ids != 0
    plan = layout(ids, keep)
    assert [(s.parent, s.shared) for s in plan.spans] == [(-1, 0), (0, MIN_SHARED), (0, len(base)), (-1, 0)]
    assert plan.ids.shape[1] == 14 + (14 - MIN_SHARED) + 1 + 14
    assert plan.positions[0, plan.spans[2].start].item() == len(base)  # positions go on after the shared part
    padded = torch.tensor([base, [0] * len(base), base[:-1] + [9]])
    spans = layout(padded, padded != 0).spans
    assert [(s.end - s.start, s.parent) for s in spans] == [(len(base), -1), (0, -1), (1, 0)]  # a row all padding


@pytest.mark.model
def test_dpo_reference_logprobs_through_our_head_cached_beside_the_dataset(smol_path, tmp_path):
    """TRL's DPOTrainer with ``answer_head_trainer``: the precomputed reference log-probabilities are the plain model's
    (summed over the answer tokens), cached beside a dataset saved in the run folder, and a training step runs."""
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    from iteralign.stages.sft_loss import answer_head_trainer

    rows = [{"prompt": [{"role": "user", "content": f"How do I open lock {i}?"}],
             "chosen": [{"role": "assistant", "content": "I can't help with that; a locksmith can."}],
             "rejected": [{"role": "assistant", "content": f"Sure: first, take pin {i}."}]} for i in range(2)]
    Dataset.from_list(rows).save_to_disk(tmp_path / "data")
    data = Dataset.load_from_disk(str(tmp_path / "data"))
    model = AutoModelForCausalLM.from_pretrained(smol_path, dtype=torch.float32)
    args = DPOConfig(output_dir=str(tmp_path / "ckpt"), per_device_train_batch_size=2, max_steps=1,
                     precompute_ref_log_probs=True, report_to="none", use_cpu=True, save_strategy="no", bf16=False)
    trainer = answer_head_trainer(DPOTrainer)(model=model, args=args, train_dataset=data,
                                              processing_class=AutoTokenizer.from_pretrained(smol_path),
                                              peft_config=LoraConfig(r=4, target_modules=["q_proj"]))
    assert trainer._answer_head
    assert any(p.name.startswith("cache-") for p in (tmp_path / "data").iterdir())  # reusable on resume
    plain = AutoModelForCausalLM.from_pretrained(smol_path, dtype=torch.float32)
    for row in trainer.train_dataset:
        for side in ("chosen", "rejected"):
            ids = torch.tensor([row["prompt_ids"] + row[f"{side}_ids"]])
            with torch.no_grad():
                logp = torch.log_softmax(plain(input_ids=ids).logits[0, :-1].float(), -1)
            n = len(row["prompt_ids"])
            want = logp[n - 1:].gather(1, ids[0, n:, None]).sum()
            assert abs(float(want) - row[f"ref_{side}_logps"]) < 1e-3
    assert trainer.train().training_loss > 0


@pytest.mark.model
@pytest.mark.heavy(15)
def test_sft_trainer_mixin_loss_equals_trl_and_metrics_only_on_request(smol_path, tmp_path):
    """One optimizer step of TRL's SFTTrainer, plain and with the mixin (metrics off, then on): same loss."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from iteralign.stages.sft_loss import answer_loss_trainer

    rows = [{"prompt": [{"role": "user", "content": f"Say something about {t}."}],
             "completion": [{"role": "assistant", "content": f"{t.capitalize()} is interesting. " * n}]}
            for t, n in (("rain", 1), ("the sea", 4))]  # different lengths: the batch is padded

    def step(cls) -> dict:
        torch.manual_seed(0)
        args = SFTConfig(output_dir=str(tmp_path / cls.__name__), per_device_train_batch_size=2, max_steps=1,
                         learning_rate=1e-4, report_to="none", use_cpu=True, bf16=False, save_strategy="no",
                         logging_steps=1, completion_only_loss=True)
        model = AutoModelForCausalLM.from_pretrained(smol_path, dtype=torch.float32)
        read = []
        model.get_input_embeddings().register_forward_hook(lambda mod, args, out: read.append(args[0].numel()))
        trainer = cls(model=model, args=args, train_dataset=Dataset.from_list(rows),
                      processing_class=AutoTokenizer.from_pretrained(smol_path))
        trainer.train()
        return trainer.state.log_history[0] | {"read": sum(read)}

    plain, fast, with_metrics = step(SFTTrainer), step(answer_loss_trainer(SFTTrainer)), step(
        answer_loss_trainer(SFTTrainer, metrics=True))
    assert abs(fast["loss"] - plain["loss"]) < 1e-4 and abs(with_metrics["loss"] - plain["loss"]) < 1e-4
    assert "entropy" in plain and "entropy" not in fast and "mean_token_accuracy" not in fast
    assert abs(with_metrics["entropy"] - plain["entropy"]) < 1e-3
    assert with_metrics["mean_token_accuracy"] == plain["mean_token_accuracy"]
    assert fast["num_tokens"] == plain["num_tokens"]  # padding is not counted either way
    # the fast path reads neither the padding nor, twice, the chat header and "Say something about" the rows share
    assert fast["read"] < plain["num_tokens"] - 20 < plain["read"]
