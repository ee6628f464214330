"""Any OpenAI-compatible chat endpoint as a ``ChatModel``: GPT-4o, vLLM or llama.cpp servers, Ollama, `iteralign serve`.

Spec: ``openai:<model>[@<base_url>]``, e.g. ``openai:gpt-4o`` or
``openai:Qwen/Qwen2.5-7B-Instruct@http://127.0.0.1:8000/v1``.

Why it is built this way:
- The official ``openai`` client does the HTTP; its own retries are switched off (``max_retries=0``) so that ours,
  with exponential backoff and jitter, are the only ones and can be counted (``OpenAIModel.retries``).
- Retried: HTTP 408/409/429/5xx, timeouts, connection errors and malformed replies (bad JSON, no choices). Anything
  else (401, 403, 400, 404, ...) fails at once: retrying a wrong key or a bad request only burns quota.
- The API key is read from the environment variable ``cfg.api_key_env`` at call time and is never stored on the
  object, so it cannot reach a repr, a config dump, the call cache or a log; error messages are built from scrubbed
  strings (the client's exceptions carry the request headers, so they are never chained or kept).
- For a loopback base URL (a local server) a missing key is replaced by the dummy ``"EMPTY"``, as vLLM documents;
  a remote endpoint without a key is an error naming the variable.
- ``generate`` is synchronous like every backend; it runs the requests on a private event loop (in a worker
  thread when the caller is already inside a running loop), at most ``cfg.max_concurrency`` at a time.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Awaitable, Callable, TypeVar
from urllib.parse import urlparse

from iteralign.models.base import ChatModel, ModelConfig
from iteralign.types import Completion, Conversation, GenerationParams, Usage

log = logging.getLogger(__name__)

T = TypeVar("T")

#: What the OpenAI API accepts in ``stop``; further stop strings are applied to the reply here.
MAX_API_STOPS = 4
#: Alternatives asked for the first token in ``label_logprobs`` (the API's maximum).
TOP_LOGPROBS = 20
#: The key sent to loopback servers when the key variable is unset (vLLM's documented placeholder).
DUMMY_LOCAL_KEY = "EMPTY"
RETRYABLE_STATUS = frozenset({408, 409, 429})
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "0.0.0.0"})


class ModelCallError(RuntimeError):
    """A model call that failed for good: not retryable, or still failing after the retry limit."""


class MalformedResponse(Exception):
    """The server answered 200 but not with a usable chat completion."""


def is_loopback(base_url: str | None) -> bool:
    """True for a base URL on this machine (127.0.0.1, localhost, ::1)."""
    host = urlparse(base_url).hostname if base_url else None
    return bool(host) and (host in LOOPBACK_HOSTS or host.startswith("127."))


def run_sync(make_coro: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to completion from sync code, also when this thread already runs an event loop."""
    try:
        asyncio.get_running_loop()
        in_loop = True
    except RuntimeError:
        in_loop = False
    if not in_loop:  # outside the ``except``, so that errors raised here carry no unrelated context
        return asyncio.run(make_coro())
    with ThreadPoolExecutor(1, thread_name_prefix="iteralign-openai") as pool:
        return pool.submit(lambda: asyncio.run(make_coro())).result()


def cut_at_stop(text: str, stop: tuple[str, ...]) -> str:
    """Cut ``text`` before the first stop string (servers that ignore some stops still obey them this way)."""
    cuts = [text.index(s) for s in stop if s and s in text]
    return text[: min(cuts)] if cuts else text


class OpenAIModel(ChatModel):
    """Chat completions from an OpenAI-compatible endpoint, with bounded concurrency and counted retries."""

    def __init__(self, model: str, base_url: str | None, cfg: ModelConfig, *, backoff_base_s: float = 1.0,
                 backoff_max_s: float = 30.0) -> None:
        import openai  # noqa: F401  (fail here, with the install hint, rather than at the first call)

        self.model = model
        self.base_url = base_url
        self.cfg = cfg
        self.name = f"openai:{model}" + (f"@{base_url}" if base_url else "")
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.usage = Usage(extra={"retries": 0, "failures": 0})
        self._lock = threading.Lock()
        self._warned_repetition = False
        self._gives_logprobs: bool | None = None  # learnt from the first label question (None: not asked yet)

    def __repr__(self) -> str:
        return f"OpenAIModel(model={self.model!r}, base_url={self.base_url!r}, key_env={self.cfg.api_key_env!r})"

    @property
    def retries(self) -> int:
        """Retries made so far (all calls of this object)."""
        return self.usage.extra["retries"]

    def identity(self) -> dict[str, Any]:
        return {"backend": "openai", "model": self.model, "base_url": self.base_url or "https://api.openai.com/v1"}

    def generate(self, conversations: list[Conversation], params: GenerationParams) -> list[Completion]:
        if params.repetition_penalty != 1.0 and not self._warned_repetition:
            self._warned_repetition = True
            log.warning("%s: repetition_penalty is not part of the OpenAI API and is ignored; use frequency_penalty",
                        self.name)
        key = self._api_key()  # checked before any request, so a missing key fails fast
        return run_sync(lambda: self._generate_all(conversations, params, key))

    def label_logprobs(self, conversations: list[Conversation], labels: list[str]) -> list[dict[str, float]]:
        """Label log-probabilities from the first generated token's ``top_logprobs`` (``TOP_LOGPROBS`` of them, one
        token generated, greedy): each label gets the best log-probability among listed tokens that start it
        (``labels_from_top``). A server that returns no logprobs, or a conversation ending in an assistant prefill
        (not part of the chat API), raises ``NotImplementedError``, so callers fall back to parsing. Whether the
        server gives logprobs is learnt from the first conversation asked alone, so a server without them costs one
        request per model, not one per conversation."""
        if any(c and c[-1]["role"] == "assistant" for c in conversations):
            raise NotImplementedError(f"{self.name}: no assistant prefill in the chat API")
        if not conversations:
            return []
        key, params = self._api_key(), GenerationParams(max_new_tokens=1, temperature=0.0)

        def ask(convs: list[Conversation]) -> list[Any]:
            tops = [] if self._gives_logprobs is False or not convs else run_sync(
                lambda: self._generate_all(convs, params, key, logprobs=True))
            if self._gives_logprobs is False or any(t is None for t in tops):
                self._gives_logprobs = False
                raise NotImplementedError(f"{self.name}: the server returned no logprobs")
            self._gives_logprobs = True
            return tops

        first = ask(conversations[:1]) if self._gives_logprobs is None else []
        return [labels_from_top(t, labels) for t in first + ask(conversations[len(first):])]

    # -- internals ---------------------------------------------------------------------------------------------

    def _api_key(self) -> str:
        key = os.environ.get(self.cfg.api_key_env, "")
        if key:
            return key
        if is_loopback(self.base_url):
            return DUMMY_LOCAL_KEY
        raise ModelCallError(
            f"{self.name}: environment variable {self.cfg.api_key_env} is not set; export the API key there "
            f"(or set `api_key_env` in the model config to the variable that holds it)"
        )

    async def _generate_all(self, conversations: list[Conversation], params: GenerationParams,
                            key: str, logprobs: bool = False) -> list[Any]:
        from openai import AsyncOpenAI

        # A fresh client per batch: its connection pool belongs to this event loop, which ends with the batch.
        client = AsyncOpenAI(api_key=key, base_url=self.base_url, timeout=self.cfg.timeout_s, max_retries=0)
        gate = asyncio.Semaphore(self.cfg.max_concurrency)
        tasks = [asyncio.ensure_future(self._call(client, gate, c, params, key, logprobs)) for c in conversations]
        try:
            return list(await asyncio.gather(*tasks))
        except BaseException:  # one request failed for good: stop the others before the client closes under them
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        finally:
            await client.close()

    async def _call(self, client: Any, gate: asyncio.Semaphore, conv: Conversation, params: GenerationParams,
                    key: str, logprobs: bool = False) -> Any:
        """One conversation, retried; raises ``ModelCallError`` outside any ``except`` so no exception is chained."""
        attempts = self.cfg.max_retries + 1
        error = ""
        for attempt in range(attempts):
            if attempt:
                delay = self._backoff(attempt)
                self._count("retries")
                log.info("%s: retry %d/%d in %.2fs after %s", self.name, attempt, self.cfg.max_retries, delay, error)
                await asyncio.sleep(delay)
            try:
                async with gate:
                    response = await asyncio.wait_for(self._request(client, conv, params, logprobs),
                                                      self.cfg.timeout_s)
                completion = self._completion(response, params)
                return top_logprobs(response) if logprobs else completion
            except Exception as exc:  # noqa: BLE001 - classified just below; nothing is swallowed silently
                retryable, error = classify(exc, self.cfg.timeout_s)
                error = error.replace(key, "***")
            if not retryable:
                self._count("failures")
                raise ModelCallError(f"{self.name}: request rejected, not retried: {error}")
        self._count("failures")
        raise ModelCallError(f"{self.name}: request failed after {attempts} attempt(s); last error: {error}")

    def _request(self, client: Any, conv: Conversation, params: GenerationParams,
                 logprobs: bool = False) -> Awaitable[Any]:
        extra = {"logprobs": True, "top_logprobs": TOP_LOGPROBS} if logprobs else {}
        return client.chat.completions.create(
            **extra,
            model=self.model,
            messages=[{"role": m["role"], "content": m["content"]} for m in conv],
            temperature=params.temperature,
            top_p=params.top_p,
            max_tokens=params.max_new_tokens,
            stop=list(params.stop[:MAX_API_STOPS]) or None,
            seed=params.seed,
            frequency_penalty=params.frequency_penalty,
        )

    def _completion(self, response: Any, params: GenerationParams) -> Completion:
        """Check the reply's shape (raising ``MalformedResponse``) and turn it into a ``Completion``."""
        choices = getattr(response, "choices", None)
        if not isinstance(choices, list) or not choices:
            raise MalformedResponse(f"no choices in the reply: {str(response)[:200]!r}")
        message = getattr(choices[0], "message", None)
        content = getattr(message, "content", None)
        if message is None or not isinstance(content, (str, type(None))):
            raise MalformedResponse(f"no message content in the reply: {str(response)[:200]!r}")
        usage = getattr(response, "usage", None)
        completion = Completion(
            text=cut_at_stop(content or "", params.stop),
            finish_reason="length" if getattr(choices[0], "finish_reason", None) == "length" else "stop",
            prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
            completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
        )
        with self._lock:
            self.usage.add([completion])
        return completion

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with full jitter: uniform in [base * 2^(n-1) / 2, base * 2^(n-1)], capped."""
        ceiling = min(self.backoff_max_s, self.backoff_base_s * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)

    def _count(self, what: str) -> None:
        with self._lock:
            self.usage.extra[what] += 1


def top_logprobs(response: Any) -> list[tuple[str, float]] | None:
    """``[(token, logprob), ...]`` offered for the first generated token, or None when the reply has none."""
    try:
        first = response.choices[0].logprobs.content[0]
        return [(t.token, float(t.logprob)) for t in first.top_logprobs] or [(first.token, float(first.logprob))]
    except (AttributeError, IndexError, TypeError):
        return None


def labels_from_top(top: list[tuple[str, float]], labels: list[str]) -> dict[str, float]:
    """Per label, the best log-probability among listed tokens that begin it (case and spaces ignored: "Ref",
    " refusal"); a label with none listed gets one nat below the least likely listed token."""
    floor = min(lp for _, lp in top) - 1.0
    out = {}
    for label in labels:
        word = label.strip().lower()
        hits = [lp for tok, lp in top if tok.strip() and word.startswith(tok.strip().lower())]
        out[label] = max(hits) if hits else floor
    return out


def classify(exc: BaseException, timeout_s: float) -> tuple[bool, str]:
    """Whether an error is worth retrying, and a description of it that holds no request data (no headers)."""
    import json

    import openai

    if isinstance(exc, (asyncio.TimeoutError, openai.APITimeoutError)):
        return True, f"timed out after {timeout_s:g}s"
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__ or exc.__context__
        return True, f"connection error ({type(cause).__name__ if cause else 'unknown'}: {cause or exc.message})"
    if isinstance(exc, openai.APIStatusError):
        retryable = exc.status_code in RETRYABLE_STATUS or exc.status_code >= 500
        return retryable, f"HTTP {exc.status_code} ({type(exc).__name__}): {exc.message}"
    if isinstance(exc, (MalformedResponse, json.JSONDecodeError, openai.APIResponseValidationError)):
        return True, f"malformed response ({type(exc).__name__}): {str(exc)[:300]}"
    return False, f"{type(exc).__name__}: {str(exc)[:300]}"
