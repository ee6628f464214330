"""iteralign's own backends, registered in ``models.base.BACKENDS``: hf, gguf, offline, openai, vllm, scripted.

Each is a small ``Backend``: it imports its library only inside ``load`` (and ``train_source``), so registering them
costs nothing. Identities are computed from files and settings alone, so a resumed run can tell whether a stage's
models changed without loading any weights.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from iteralign.models.base import BACKENDS, Backend, ChatModel, ModelConfig, ModelSpec, SpecError
from iteralign.models.hf_weights import local_identity, weights_fingerprint


def _hub_name(path_or_hub_id: str) -> str | None:
    """A hub id names the model; a local folder does not (its content does, and it may move)."""
    return None if Path(path_or_hub_id).expanduser().exists() else path_or_hub_id


@BACKENDS.register("hf")
class HFBackend(Backend):
    form = "hf:<hub id or local directory>"

    def load(self, spec: ModelSpec, cfg: ModelConfig) -> ChatModel:
        from iteralign.models.hf import HFModel

        return HFModel.load(spec.name, cfg, identity=self.identity(spec, cfg))

    def identity(self, spec: ModelSpec, cfg: ModelConfig) -> dict[str, Any]:
        return local_identity("hf", _hub_name(spec.name), weights_fingerprint(spec.name), cfg, spec.name)

    def train_source(self, spec: ModelSpec) -> str:
        return spec.name


@BACKENDS.register("gguf")
class GGUFBackend(Backend):
    form = "gguf:<path to a .gguf file>"

    def load(self, spec: ModelSpec, cfg: ModelConfig) -> ChatModel:
        from iteralign.models.hf import HFModel

        return HFModel.load(self.train_source(spec), cfg, identity=self.identity(spec, cfg))

    def identity(self, spec: ModelSpec, cfg: ModelConfig) -> dict[str, Any]:
        from iteralign.models.offline import OfflineModelError, file_sha256

        path = Path(spec.name).expanduser()
        if not path.is_file():
            raise OfflineModelError(f"gguf: no such file {path}")
        return local_identity("hf", None, "sha256:" + file_sha256(path), cfg, None)

    def train_source(self, spec: ModelSpec) -> str:
        from iteralign.models.offline import convert_gguf

        return str(convert_gguf(spec.name))


@BACKENDS.register("offline")
class OfflineBackend(Backend):
    form = "offline:<name>  (a model shipped in a PyPI package; see `iteralign models`)"

    def load(self, spec: ModelSpec, cfg: ModelConfig) -> ChatModel:
        from iteralign.models.hf import HFModel

        return HFModel.load(self.train_source(spec), cfg, name=str(spec), identity=self.identity(spec, cfg))

    def identity(self, spec: ModelSpec, cfg: ModelConfig) -> dict[str, Any]:
        from iteralign.models.offline import get

        return local_identity("hf", str(spec), "sha256:" + get(spec.name).sha256, cfg, None)

    def train_source(self, spec: ModelSpec) -> str:
        from iteralign.models.offline import ensure_converted

        return str(ensure_converted(spec.name))


@BACKENDS.register("openai")
class OpenAIBackend(Backend):
    form = "openai:<model>[@<base_url>]  (any OpenAI-compatible endpoint)"

    def parse(self, backend: str, rest: str) -> ModelSpec:
        base_url = None
        if "@" in rest:
            rest, base_url = rest.split("@", 1)
            if not re.match(r"https?://", base_url):
                raise SpecError(f"base URL {base_url!r} in {backend}:{rest}@{base_url} must start with http:// or "
                                "https://")
        return ModelSpec(backend, rest.strip(), base_url)

    def load(self, spec: ModelSpec, cfg: ModelConfig) -> ChatModel:
        from iteralign.models.openai_api import OpenAIModel

        return OpenAIModel(spec.name, spec.base_url, cfg, backoff_base_s=cfg.backoff_base_s)

    def identity(self, spec: ModelSpec, cfg: ModelConfig) -> dict[str, Any]:
        return {"backend": "openai", "model": spec.name, "base_url": spec.base_url or "https://api.openai.com/v1"}


@BACKENDS.register("vllm")
class VLLMBackend(Backend):
    form = "vllm:<hub id or local directory>  (needs the 'vllm' extra and a GPU)"
    serve_tuned_as = "vllm"  # a vLLM target stays on vLLM after full fine-tuning

    def load(self, spec: ModelSpec, cfg: ModelConfig) -> ChatModel:
        from iteralign.models.vllm import VLLMModel

        return VLLMModel(spec.name, cfg, identity=self.identity(spec, cfg))

    def identity(self, spec: ModelSpec, cfg: ModelConfig) -> dict[str, Any]:
        ident = local_identity("vllm", _hub_name(spec.name), weights_fingerprint(spec.name), cfg, spec.name)
        return ident | {"tensor_parallel_size": cfg.tensor_parallel_size,
                        "engine_args": sorted((k, repr(v)) for k, v in cfg.engine_args.items())}

    def train_source(self, spec: ModelSpec) -> str:
        return spec.name


@BACKENDS.register("scripted")
class ScriptedBackend(Backend):
    form = "scripted:<rules.yaml>  (deterministic replies, for tests and dry runs)"

    def load(self, spec: ModelSpec, cfg: ModelConfig) -> ChatModel:
        from iteralign.models.scripted import ScriptedModel

        return ScriptedModel.from_file(spec.name)

    def identity(self, spec: ModelSpec, cfg: ModelConfig) -> dict[str, Any]:
        from iteralign.models.hf_weights import adapter_fingerprint
        from iteralign.models.scripted import ScriptedModel

        ident = ScriptedModel.from_file(spec.name).identity()  # an adapter changes nothing it says, but is a model
        return ident | {"adapter": adapter_fingerprint(cfg.adapter)} if cfg.adapter else ident
