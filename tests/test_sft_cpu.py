"""CPU speed-ups of bf16 training that must not change what is trained: LoRA inputs left in bf16 under autocast
(``sft_model.adapter_inputs_in_compute_dtype``), denormals flushed while training (``stages/denormals.py``), and the
answer head's bf16 path against a float64 reference."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from iteralign.stages.denormals import flush_denormals  # noqa: E402
from iteralign.stages.sft_loss import answer_logprobs  # noqa: E402
from iteralign.stages.sft_model import adapter_inputs_in_compute_dtype, checkpointing_args  # noqa: E402
from iteralign.stages.sft_model import training_bf16  # noqa: E402


def test_checkpointing_is_passed_under_the_names_the_installed_trainer_knows():
    import dataclasses

    from trl import DPOConfig, SFTConfig

    old = dataclasses.make_dataclass("Old", [("gradient_checkpointing", bool, False)])  # transformers 5.17
    new = dataclasses.make_dataclass("New", [("gradient_checkpointing", bool, False),
                                             ("activation_checkpointing", bool, False)])
    assert checkpointing_args(old, True) == {"gradient_checkpointing": True}
    assert checkpointing_args(new, False) == {"gradient_checkpointing": False, "activation_checkpointing": False}
    for config in (SFTConfig, DPOConfig):  # whatever is installed accepts what we pass
        args = config(output_dir="unused", use_cpu=True, **checkpointing_args(config, True))
        assert args.gradient_checkpointing is True


@pytest.mark.parametrize("native,asked,trains", [(True, True, True), (False, True, False), (False, False, False),
                                                 (True, False, False)])
def test_bf16_is_trained_as_asked_except_on_a_cpu_without_bf16(monkeypatch, caplog, native, asked, trains):
    """``sft.bf16`` on a CPU without native bf16 (AVX2) trains in float32 and says so; elsewhere as asked."""
    from iteralign.models import hf_linear

    monkeypatch.setattr(hf_linear, "native_bf16", lambda: native)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with caplog.at_level("WARNING", logger="iteralign.stages.sft_model"):
        assert training_bf16(asked) is trains
    assert ("training in float32" in caplog.text) is (asked and not native)


def test_denormals_are_flushed_inside_the_block_only():
    tiny = torch.tensor([1e-39, 1.0])  # 1e-39 is a float32 denormal
    with flush_denormals() as supported:
        if not supported:
            pytest.skip("this CPU cannot flush denormals")
        assert (tiny * 1.0).tolist() == [0.0, 1.0]
    assert (tiny * 1.0)[0].item() > 0


def test_answer_head_in_bf16_autocast_is_close_to_float64():
    g = torch.Generator().manual_seed(1)
    hidden = torch.randn(37, 16, generator=g, requires_grad=True)
    weight = torch.randn(300, 16, generator=g) / 4
    targets = torch.randint(0, 300, (37,), generator=g)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logp, extra = answer_logprobs(hidden, weight, None, targets, ("entropy", "mean_logits"))
    (grad,) = torch.autograd.grad(logp.sum(), hidden)
    h64, w64 = hidden.detach().double().requires_grad_(), weight.double()
    ref = torch.log_softmax(h64 @ w64.t(), -1)
    ref_logp = ref.gather(1, targets[:, None]).squeeze(1)
    (ref_grad,) = torch.autograd.grad(ref_logp.sum(), h64)
    assert logp.dtype == torch.float32 and grad.dtype == hidden.dtype
    assert torch.allclose(logp.double(), ref_logp, atol=0.05)  # bf16 logits: ~3 significant digits
    assert torch.allclose(extra["entropy"].double(), -(ref.exp() * ref).sum(-1), atol=0.05)
    assert torch.allclose(grad.double(), ref_grad, atol=0.05)


def _lora_loss_and_grads(model, ids):
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = model(input_ids=ids, labels=ids).loss
    params = [p for n, p in model.named_parameters() if p.requires_grad]
    return loss.detach(), torch.autograd.grad(loss, params)


def test_lora_inputs_left_in_bf16_train_the_same(smol_path):
    """Under bf16 autocast, skipping PEFT's cast of each LoRA input to the float32 adapter dtype gives the same loss
    and adapter gradients (within bf16 rounding), and the adapter weights stay float32 master weights."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(str(smol_path), dtype=torch.bfloat16)
    model = get_peft_model(base, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules="all-linear",
                                            init_lora_weights=False, task_type="CAUSAL_LM"))
    ids = torch.tensor([[1, 4093, 314, 253, 2421, 28, 1029, 314, 1345, 30]])
    loss_cast, grads_cast = _lora_loss_and_grads(model, ids)
    assert adapter_inputs_in_compute_dtype(model, bf16=False) == 0
    assert adapter_inputs_in_compute_dtype(model, bf16=True) == 30 * 7  # every linear of the 30 layers
    loss, grads = _lora_loss_and_grads(model, ids)
    assert abs(loss.item() - loss_cast.item()) < 0.02 * abs(loss_cast.item())
    assert all(g.dtype == torch.float32 for g in grads)
    cos = torch.nn.functional.cosine_similarity(torch.cat([g.flatten() for g in grads]),
                                                torch.cat([g.flatten() for g in grads_cast]), dim=0)
    assert cos > 0.99
