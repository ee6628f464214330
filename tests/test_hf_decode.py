"""The decoding loop (models/hf_decode.py) and packed bf16 linears (models/hf_linear.py).

The loop must compute what ``model.generate`` computes (greedy and sampled), its pre-allocated cache must hold what
transformers' ``DynamicLayer`` holds, finished rows must leave the batch, and packed linears must not change logits.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from iteralign.types import GenerationParams, user

PROMPTS = [user("Hi"), user("Name three colours."), user("Write two sentences about the moon and the tides."),
           user("What is 2+2?", system="Answer with one number.")]


def test_preallocated_layer_holds_what_dynamic_layer_holds():
    import torch
    from transformers.cache_utils import DynamicLayer

    from iteralign.models.hf_decode import PreallocatedLayer

    ours, ref = PreallocatedLayer(capacity=6), DynamicLayer()
    rows = 3
    for step in range(5):  # a prefill of 4 positions, then 4 single steps: past the capacity, so it grows once
        k = torch.randn(rows, 2, 4 if step == 0 else 1, 5)
        got, want = ours.update(k, -k), ref.update(k, -k)
        assert all(torch.equal(a, b) for a, b in zip(got, want)) and ours.get_seq_length() == ref.get_seq_length()
        if step == 2:  # a row finishes: both keep rows 0 and 2
            keep = torch.tensor([0, 2])
            ours.batch_select_indices(keep)
            ref.batch_select_indices(keep)
            rows = 2
    assert ours.get_seq_length() == 8 and ours._keys.shape[2] >= 8
    ours.crop(-2)
    ref.crop(-2)
    assert torch.equal(ours.keys, ref.keys) and ours.get_seq_length() == 6
    expanded = PreallocatedLayer(capacity=8)  # a broadcast prefix (hf_prefill) is copied into each row
    expanded.update(torch.ones(1, 2, 3, 5).expand(4, -1, -1, -1), torch.zeros(1, 2, 3, 5).expand(4, -1, -1, -1))
    assert expanded.keys.shape == (4, 2, 3, 5) and expanded._keys.shape[2] == 8


def _transformers_generate(hf, convs, **kwargs) -> list[str]:
    """Plain ``model.generate`` (left-padded batch, DynamicCache), cut like our completions."""
    import torch

    prompts = [hf.encode_chat(c) for c in convs]
    enc = hf.tokenizer.pad({"input_ids": prompts}, padding=True, padding_side="left", return_tensors="pt")
    with torch.inference_mode():
        out = hf.model.generate(**enc, pad_token_id=hf.tokenizer.pad_token_id, eos_token_id=sorted(hf._eos_ids),
                                **kwargs)
    width = enc["input_ids"].shape[1]
    return [hf._completion(row[width:].tolist(), 0, []).text for row in out]


@pytest.mark.model
def test_greedy_equals_transformers_generate_float32(smol_hf):
    params = GenerationParams(max_new_tokens=20)
    ours = [c.text for c in smol_hf.generate(PROMPTS, params)]
    assert ours == _transformers_generate(smol_hf, PROMPTS, max_new_tokens=20, do_sample=False)


@pytest.mark.model
def test_sampling_equals_transformers_generate(smol_hf):
    """One prompt (no row leaves early), same seed: the same processors in the same order draw the same tokens."""
    import torch

    params = GenerationParams(max_new_tokens=16, temperature=0.9, top_p=0.8, repetition_penalty=1.2, seed=7)
    ours = smol_hf.generate(PROMPTS[1:2], params)[0].text
    torch.manual_seed(7)
    theirs = _transformers_generate(smol_hf, PROMPTS[1:2], max_new_tokens=16, do_sample=True, temperature=0.9,
                                    top_p=0.8, top_k=0, repetition_penalty=1.2)[0]
    assert ours == theirs


@pytest.mark.model
def test_finished_rows_leave_the_batch(smol_hf):
    widths = []
    hook = smol_hf.model.get_input_embeddings().register_forward_pre_hook(lambda m, a: widths.append(a[0].shape[0]))
    try:
        out = smol_hf.generate([user("Hi"), user("List the planets of the solar system in order from the sun, with "
                                                 "one fact about each.")], GenerationParams(max_new_tokens=40))
    finally:
        hook.remove()
    assert out[0].finish_reason == "stop" and out[0].completion_tokens < out[1].completion_tokens
    assert widths[0] == 2 and widths[-1] == 1  # the short answer's row stopped being computed
    assert len(widths) == out[1].completion_tokens  # prefill + one forward per token after the first


@pytest.mark.model
def test_packed_linears_keep_bf16_logits_and_float32_ones_where_bf16_is_not_native(smol_path: Path):
    import torch
    from transformers import AutoModelForCausalLM

    from iteralign.models.hf_linear import native_bf16, pack_linears

    plain = AutoModelForCausalLM.from_pretrained(smol_path, dtype=torch.bfloat16).eval()
    packed = AutoModelForCausalLM.from_pretrained(smol_path, dtype=torch.bfloat16).eval()
    assert pack_linears(packed) == 7 * plain.config.num_hidden_layers + 1  # q k v o gate up down, and the head
    ids = torch.tensor([[1, 504, 3458, 314, 260, 1345, 30], [1, 28, 16, 85, 2, 2, 2]])
    with torch.inference_mode():
        got, want = packed(input_ids=ids).logits, plain(input_ids=ids).logits
    if _cpu_packs_bf16():
        assert torch.equal(got, want)
    else:  # float32 products rounded to bf16: as near the float32 model as plain bf16 is (measured: mean 0.28, 0.30)
        from iteralign.models.hf_linear import _ops_available

        assert type(packed.lm_head).__name__ == "Float32Linear" and packed.lm_head.packed == _ops_available()
        with torch.inference_mode():
            exact = AutoModelForCausalLM.from_pretrained(smol_path, dtype=torch.float32)(input_ids=ids).logits
        assert (got.float() - exact).abs().mean() <= 1.1 * (want.float() - exact).abs().mean()
        assert torch.equal(got.argmax(-1), exact.argmax(-1))
    f32 = AutoModelForCausalLM.from_pretrained(smol_path, dtype=torch.float32).eval()
    with torch.inference_mode():
        exact = f32(input_ids=ids).logits
    if native_bf16():  # float32 models are left to MKL there
        assert pack_linears(f32) == 0
        return
    assert pack_linears(f32) == 7 * plain.config.num_hidden_layers + 1  # packed float32 on a CPU without it
    with torch.inference_mode():
        got = f32(input_ids=ids).logits
    assert got.dtype == torch.float32 and torch.allclose(got, exact, atol=1e-3, rtol=1e-4)


def _cpu_packs_bf16() -> bool:
    """Whether oneDNN packs a bf16 weight on this CPU (it needs AVX-512 or AVX-NE-CONVERT; an AVX2 CPU raises)."""
    import torch

    try:
        torch.ops.mkldnn._reorder_linear_weight(torch.zeros(8, 8, dtype=torch.bfloat16), 16)
    except RuntimeError:
        return False
    return True


@pytest.mark.parametrize("native", [True, False])
def test_where_packing_is_refused_bf16_layers_multiply_in_float32_unless_the_cpu_has_bf16(monkeypatch, native):
    """On a CPU without AVX-512 the packing op exists but raises. With native bf16 (other reasons to refuse) the
    model is left as it was; without it (AVX2) each layer multiplies the exact float32 copy of its weights and
    returns bf16: the float32 product of the same values, rounded."""
    import torch

    from iteralign.models import hf_linear

    def refuse(weight, rows):
        raise RuntimeError("mkldnn_reorder_linear_weight: bf16 path needs the cpu support avx_ne_convert or avx512bw")

    monkeypatch.setattr(torch.ops.mkldnn, "_reorder_linear_weight", refuse)
    monkeypatch.setattr(hf_linear, "native_bf16", lambda: native)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 4), torch.nn.Linear(4, 3, bias=False)).to(torch.bfloat16)
    w0, b0, w1 = (t.detach().clone() for t in (model[0].weight, model[0].bias, model[1].weight))
    x = torch.randn(2, 8, dtype=torch.bfloat16)
    assert hf_linear.pack_linears(model) == (0 if native else 2)
    if native:
        assert type(model[0]) is torch.nn.Linear and model(x).shape == (2, 3)
        return
    assert [type(m).__name__ for m in model] == ["Float32Linear", "Float32Linear"]
    hidden = torch.nn.functional.linear(x.float(), w0.float(), b0.float()).to(torch.bfloat16)
    want = torch.nn.functional.linear(hidden.float(), w1.float()).to(torch.bfloat16)
    with torch.inference_mode():
        got = model(x)
    assert got.dtype == torch.bfloat16 and torch.equal(got, want)


def test_where_only_float32_packs_bf16_layers_multiply_packed_float32_copies(monkeypatch):
    """An AVX2 CPU: oneDNN packs float32 weights but not bf16 ones. Each bf16 layer then multiplies a packed float32
    copy of its weights (2-3x MKL's speed at decoding's few rows): the float32 product of the same values up to
    summation order, rounded to bf16."""
    import torch

    from iteralign.models import hf_linear

    if not hf_linear._ops_available():
        pytest.skip("this torch has no oneDNN linear ops")
    real = torch.ops.mkldnn._reorder_linear_weight

    def float32_only(weight, rows):
        if weight.dtype == torch.bfloat16:
            raise RuntimeError("mkldnn_reorder_linear_weight: bf16 path needs the cpu support avx_ne_convert")
        return real(weight, rows)

    monkeypatch.setattr(torch.ops.mkldnn, "_reorder_linear_weight", float32_only)
    monkeypatch.setattr(hf_linear, "native_bf16", lambda: False)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 96), torch.nn.ReLU(), torch.nn.Linear(96, 40)).to(torch.bfloat16)
    x = torch.randn(3, 7, 64, dtype=torch.bfloat16)
    w0, b0, w1, b1 = (p.detach().float() for p in (model[0].weight, model[0].bias, model[2].weight, model[2].bias))
    hidden = torch.relu(torch.nn.functional.linear(x.float(), w0, b0).to(torch.bfloat16))
    want = torch.nn.functional.linear(hidden.float(), w1, b1).to(torch.bfloat16)
    assert hf_linear.pack_linears(model) == 2
    assert [type(m).__name__ for m in model] == ["Float32Linear", "ReLU", "Float32Linear"]
    assert model[0].packed and model[2].packed
    with torch.inference_mode():
        got = model(x)
    assert got.dtype == torch.bfloat16
    assert torch.allclose(got.float(), want.float(), rtol=2 ** -7, atol=2 ** -7)  # a bf16 rounding step at most


@pytest.mark.parametrize("native", [True, False])
def test_float32_layers_are_packed_only_on_a_cpu_without_native_bf16(monkeypatch, native):
    """Where bf16 is not native (AVX2), MKL's float32 products of a few rows are 2-3x slower than oneDNN's packed
    ones, so float32 layers are packed there too, with the same product up to summation order; elsewhere float32
    models are left as they were."""
    import torch

    from iteralign.models import hf_linear

    if not hf_linear._ops_available():
        pytest.skip("this torch has no oneDNN linear ops")
    monkeypatch.setattr(hf_linear, "native_bf16", lambda: native)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 96), torch.nn.ReLU(), torch.nn.Linear(96, 40))
    x = torch.randn(3, 7, 64)
    with torch.inference_mode():
        want = model(x)
    assert hf_linear.pack_linears(model) == (0 if native else 2)
    assert [type(m).__name__ for m in model] == (["Linear", "ReLU", "Linear"] if native else
                                                 ["Float32Linear", "ReLU", "Float32Linear"])
    assert native or (model[0].packed and model[2].packed)
    with torch.inference_mode():
        got = model(x)
    assert got.dtype == torch.float32 and torch.allclose(got, want, atol=1e-5, rtol=1e-5)

    def refuse(weight, rows):
        raise RuntimeError("no packing here")

    monkeypatch.setattr(torch.ops.mkldnn, "_reorder_linear_weight", refuse)  # oneDNN will not pack: left as it is
    assert hf_linear.pack_linears(torch.nn.Sequential(torch.nn.Linear(8, 4))) == 0


def test_streamed_pieces_are_the_greedy_answer(smol_hf):
    """``generate_stream`` (serve's ``stream: true``) feeds the streamer from the decoding loop: the pieces join up to
    the answer ``generate`` gives, and nothing of the prompt is streamed."""
    params = GenerationParams(max_new_tokens=24, temperature=0.0)
    pieces: list[str] = []
    streamed = smol_hf.generate_stream(PROMPTS[1], params, pieces.append)
    plain = smol_hf.generate([PROMPTS[1]], params)[0]
    assert streamed.text == plain.text and len(pieces) > 1
    assert "".join(pieces).strip().startswith(plain.text.strip()[:40])
    assert "Name three colours" not in "".join(pieces)


@pytest.mark.model
def test_every_decoding_step_attends_under_a_mask(smol_hf, monkeypatch):
    """One unpadded row: transformers would drop the all-ones mask and call SDPA with ``enable_gqa``, whose CPU
    kernel for one query token makes a bf16 step over 300 keys about twice as slow; ``step_mask`` keeps the mask, so
    every step takes the grouped-query path a padded batch takes, and the answer is the same."""
    import torch

    masked: list[bool] = []  # per SDPA call: under a mask, without enable_gqa
    sdpa = torch.nn.functional.scaled_dot_product_attention

    def spy(query, key, value, attn_mask=None, **kwargs):
        masked.append(attn_mask is not None and not kwargs.get("enable_gqa", False))
        return sdpa(query, key, value, attn_mask=attn_mask, **kwargs)

    params = GenerationParams(max_new_tokens=8)
    plain = smol_hf.generate(PROMPTS[1:2], params)[0].text
    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", spy)
    assert smol_hf.generate(PROMPTS[1:2], params)[0].text == plain
    layers = smol_hf.model.config.num_hidden_layers
    assert len(masked) == 8 * layers and all(masked[layers:])  # the prompt's pass, then 7 steps of one token


@pytest.mark.model
def test_other_attention_kernels_get_the_2d_mask(smol_hf):
    """``eager`` adds its mask to the scores, so the boolean step mask is for ``sdpa`` only: under ``eager`` a padded
    batch still decodes as ``model.generate`` does."""
    smol_hf.model.set_attn_implementation("eager")
    try:
        params = GenerationParams(max_new_tokens=12)
        ours = [c.text for c in smol_hf.generate(PROMPTS[:3], params)]
        assert ours == _transformers_generate(smol_hf, PROMPTS[:3], max_new_tokens=12, do_sample=False)
    finally:
        smol_hf.model.set_attn_implementation("sdpa")


def test_the_boolean_step_mask_is_for_grouped_query_sdpa_models():
    """Only a grouped-query model has the masked path to gain (with as many key as query heads the mask only costs);
    other kernels and sliding windows read transformers' own masks."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM

    from iteralign.models.hf_decode import step_mask

    def tiny(heads: int, kv_heads: int, attention: str = "sdpa", family=(LlamaConfig, LlamaForCausalLM), **extra):
        config = family[0](hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=heads,
                           num_key_value_heads=kv_heads, vocab_size=64, **extra)
        model = family[1](config)
        model.set_attn_implementation(attention)
        return model

    mask = torch.tensor([[0, 1, 1], [1, 1, 1]])
    assert torch.equal(step_mask(tiny(4, 2))(mask), mask.bool()[:, None, None, :])
    assert step_mask(tiny(4, 4))(mask) is mask
    assert step_mask(tiny(4, 2, "eager"))(mask) is mask
    assert step_mask(tiny(4, 2, family=(MistralConfig, MistralForCausalLM), sliding_window=2))(mask) is mask
