"""Write a transformers causal LM as a GGUF file with the ``gguf`` package: weights, hyper-parameters, tokenizer.

For the ``llama`` (SmolLM2, Llama, TinyLlama...) and ``qwen2`` (Qwen2, Qwen2.5) architectures, as llama.cpp's own
converter writes them: tensor names from ``gguf``'s name map, llama's query/key rows permuted into llama.cpp's rotary
layout (transformers reverses it on load), 1-D tensors (norms, biases) in F32 and the 2-D weights in the chosen type
(F16 where a row does not divide into the type's blocks), a tied output projection left out (readers reuse the token
embedding), the BPE vocabulary with token types, merges, special token ids and the chat template.

Quantisation types are those the ``gguf`` package can write itself (``QUANT_TYPES``); k-quants (Q4_K_M...) and i-quants
need llama.cpp's ``llama-quantize`` on the F16 file. Other architectures raise ``UnsupportedModel``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: --quant choices: name -> (GGMLQuantizationType name, LlamaFileType name)
QUANT_TYPES = {"f32": ("F32", "ALL_F32"), "f16": ("F16", "MOSTLY_F16"), "bf16": ("BF16", "MOSTLY_BF16"),
               "q8_0": ("Q8_0", "MOSTLY_Q8_0"), "q5_1": ("Q5_1", "MOSTLY_Q5_1"), "q5_0": ("Q5_0", "MOSTLY_Q5_0"),
               "q4_1": ("Q4_1", "MOSTLY_Q4_1"), "q4_0": ("Q4_0", "MOSTLY_Q4_0")}
ARCHITECTURES = ("llama", "qwen2")


class UnsupportedModel(ValueError):
    """An architecture or quantisation type this writer does not handle; the message says what is supported."""


def check_quant(quant: str) -> None:
    """``UnsupportedModel`` naming the choices unless the ``gguf`` package can write ``quant`` itself."""
    if quant not in QUANT_TYPES:
        raise UnsupportedModel(f"unknown GGUF quantisation {quant!r}; the gguf package writes {', '.join(QUANT_TYPES)} "
                               "(k-quants: run llama.cpp's llama-quantize on the f16 file)")


def write_gguf(model: Any, tokenizer: Any, path: Path, quant: str = "f16", name: str | None = None) -> Path:
    """Write ``model`` (a transformers ``PreTrainedModel``, adapter merged) and its tokenizer to ``path``."""
    import gguf

    arch = model.config.model_type
    if arch not in ARCHITECTURES:
        raise UnsupportedModel(f"GGUF export supports the {', '.join(ARCHITECTURES)} architectures, not {arch!r}; "
                               "export --format merged and convert with llama.cpp's convert_hf_to_gguf.py")
    check_quant(quant)
    qtype = gguf.GGMLQuantizationType[QUANT_TYPES[quant][0]]
    writer = gguf.GGUFWriter(str(path), arch)
    _hyperparameters(writer, model.config, name, gguf.LlamaFileType[QUANT_TYPES[quant][1]])
    _vocabulary(writer, tokenizer, model.config)
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH[arch.upper()], model.config.num_hidden_layers)
    for hf_name, tensor in model.state_dict().items():
        if hf_name == "lm_head.weight" and model.config.tie_word_embeddings:
            continue  # tied: readers take the output projection from token_embd
        data = tensor.float().cpu().numpy()
        if arch == "llama":
            data = _permute_rotary(hf_name, data, model.config)
        gguf_name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if gguf_name is None:
            raise UnsupportedModel(f"no GGUF name for tensor {hf_name} of a {arch} model")
        _add_tensor(writer, gguf_name, data, qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def _hyperparameters(writer: Any, cfg: Any, name: str | None, file_type: Any) -> None:
    rope = getattr(cfg, "rope_parameters", None) or {}
    theta = rope.get("rope_theta", getattr(cfg, "rope_theta", None))
    writer.add_name(name or cfg.model_type)
    writer.add_context_length(cfg.max_position_embeddings)
    writer.add_embedding_length(cfg.hidden_size)
    writer.add_block_count(cfg.num_hidden_layers)
    writer.add_feed_forward_length(cfg.intermediate_size)
    writer.add_head_count(cfg.num_attention_heads)
    writer.add_head_count_kv(cfg.num_key_value_heads)
    writer.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    if theta is not None:
        writer.add_rope_freq_base(float(theta))
    if cfg.model_type == "llama":
        writer.add_rope_dimension_count(getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads)
    writer.add_vocab_size(cfg.vocab_size)
    writer.add_file_type(file_type)
    writer.add_quantization_version(2)


def _vocabulary(writer: Any, tokenizer: Any, cfg: Any) -> None:
    """GPT-2-style BPE vocabulary (both supported families use it): tokens by id with llama.cpp's token types,
    padded to the model's embedding rows; merges, special ids and the chat template through ``gguf.SpecialVocab``."""
    import tempfile

    import gguf

    if not getattr(tokenizer, "is_fast", False) or json.loads(tokenizer.backend_tokenizer.to_str())["model"]["type"] \
            != "BPE":
        raise UnsupportedModel("GGUF export needs a BPE (GPT-2 style) fast tokenizer")
    vocab = {i: t for t, i in tokenizer.get_vocab().items()}
    added = tokenizer.added_tokens_decoder
    tokens, types = [], []
    for i in range(cfg.vocab_size):
        if i not in vocab:
            tokens.append(f"[PAD{i}]")
            types.append(gguf.TokenType.UNUSED)
        elif i in added:
            tokens.append(vocab[i])
            types.append(gguf.TokenType.CONTROL if added[i].special else gguf.TokenType.USER_DEFINED)
        else:
            tokens.append(vocab[i])
            types.append(gguf.TokenType.NORMAL)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(_pre_tokenizer(tokenizer, cfg))
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    with tempfile.TemporaryDirectory() as tmp:  # SpecialVocab reads the saved tokenizer files
        tokenizer.save_pretrained(tmp)
        gguf.SpecialVocab(tmp, load_merges=True, n_vocab=cfg.vocab_size).add_to_gguf(writer, quiet=True)


def _pre_tokenizer(tokenizer: Any, cfg: Any) -> str:
    """llama.cpp's name for the tokenizer's pre-tokenizer (how text is split before BPE): ``qwen2`` for Qwen2,
    ``smollm`` for SmolLM's digit-splitting byte-level one, ``gpt-2`` for plain byte-level with GPT-2's regex (what
    transformers builds when it reads a GGUF, so the offline models' tokenizers); otherwise ``default``, with a
    warning, since llama.cpp may then split some text differently from transformers."""
    if cfg.model_type == "qwen2":
        return "qwen2"
    pre = json.loads(tokenizer.backend_tokenizer.to_str()).get("pre_tokenizer") or {}
    parts = pre.get("pretokenizers", [pre])
    kinds = [p.get("type") for p in parts]
    if kinds == ["Digits", "ByteLevel"]:
        return "smollm"
    if kinds == ["ByteLevel"] and parts[0].get("use_regex", True):
        return "gpt-2"
    log.warning("GGUF export: pre-tokenizer %s has no llama.cpp name known here; written as 'default'", kinds)
    return "default"


def _permute_rotary(hf_name: str, data: Any, cfg: Any) -> Any:
    """llama.cpp's row order for llama's q_proj / k_proj (the inverse of transformers' reverse permute)."""
    if hf_name.endswith("self_attn.q_proj.weight"):
        heads = cfg.num_attention_heads
    elif hf_name.endswith("self_attn.k_proj.weight"):
        heads = cfg.num_key_value_heads
    else:
        return data
    return data.reshape(heads, 2, data.shape[0] // heads // 2, *data.shape[1:]).swapaxes(1, 2).reshape(data.shape)


def _add_tensor(writer: Any, name: str, data: Any, qtype: Any) -> None:
    """1-D tensors in F32; 2-D ones in ``qtype``, or F16 when a row is not a whole number of ``qtype`` blocks."""
    import gguf
    import numpy as np

    F32, F16 = gguf.GGMLQuantizationType.F32, gguf.GGMLQuantizationType.F16
    if data.ndim < 2 or qtype == F32:
        writer.add_tensor(name, data.astype(np.float32))
        return
    block = gguf.GGML_QUANT_SIZES[qtype][0]
    if data.shape[-1] % block:
        qtype = F16
    if qtype == F16:
        writer.add_tensor(name, data.astype(np.float16))
    else:
        writer.add_tensor(name, gguf.quants.quantize(data, qtype), raw_dtype=qtype)
