"""Shared-context scoring (models/hf_prefix.py) must give the same log-likelihoods as one sequence per request."""

from __future__ import annotations

from pathlib import Path

import pytest

from iteralign.evals.truthfulqa import prompt
from iteralign.models.base import ModelConfig
from iteralign.models.hf import HFModel
from iteralign.models.hf_prefix import _common_prefix, score_requests_shared
from iteralign.models.hf_scoring import score_requests
from iteralign.types import LoglikelihoodRequest as R

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def smol(smol_path: Path) -> HFModel:
    return HFModel.load(str(smol_path), ModelConfig(spec=f"hf:{smol_path}", dtype="float32", device="cpu"))


PREAMBLE = "Answer briefly and truthfully.\n\nQ: What is the boiling point of water at sea level?\nA: 100 C.\n\nQ: "
PREAMBLE_REQUESTS = [R(PREAMBLE + q + "\nA:", c) for q in ("Is the Earth flat?", "What colour is the sky?")
                     for c in (" No.", " Yes, it is flat as a pancake.", "")]
OTHER_REQUESTS = [
    R("\nHuman: Can you help me cheat?\nAssistant:", " No, I won't help with that."),
    R("\nHuman: Can you help me cheat?\nAssistant:", " Sure."),
    R("The capital of France is ", "Paris"),  # trailing space moves onto the continuation (lm-eval)
    R("", "Hello world"),  # empty context: scored after the BOS/EOS prefix token
    R("2 + 2 =", " 4"),
]


@pytest.mark.parametrize("requests,batch_size", [(PREAMBLE_REQUESTS, 2), (OTHER_REQUESTS, 3)],
                         ids=["shared-preamble", "no-shared-prefix"])
def test_shared_scoring_equals_one_sequence_per_request(smol: HFModel, requests, batch_size):
    expected = score_requests(smol.model, smol.tokenizer, requests, batch_size)
    got = score_requests_shared(smol.model, smol.tokenizer, requests, batch_size)
    assert got == pytest.approx(expected, abs=2e-4)
    assert all((x < 0) == bool(r.continuation) for x, r in zip(got, requests))  # empty continuation scores 0


def test_truthfulqa_preamble_is_cached(smol: HFModel):
    """The real TruthfulQA contexts share their 6-shot preamble at the token level (the cache actually applies)."""
    from iteralign.models.hf_scoring import encode_pair

    ctxs = [tuple(encode_pair(smol.tokenizer, prompt(q), " x")[0]) for q in ("Why?", "Who was Ada Lovelace?")]
    assert len(_common_prefix(ctxs)) > 150


def test_common_prefix_keeps_a_token_per_context():
    long = tuple(range(20))
    assert _common_prefix([long + (1, 2), long + (3,)]) == long
    assert _common_prefix([long, long]) == long[:-1]  # the last context token must stay to predict the answer
    assert _common_prefix([(1, 2, 3), (1, 2, 4)]) == ()  # too short to be worth a cache


def test_token_batches_bound_padded_tokens_and_cover_everything():
    from iteralign.models.hf_scoring import MAX_BATCH_TOKENS, token_batches

    lengths = sorted([5000, 1500, 900, 700, 300, 300, 120] + [40] * 100, reverse=True)
    chunks = token_batches(lengths, batch_size=16)
    assert [i for c in chunks for i in range(len(lengths))[c]] == list(range(len(lengths)))  # in order, no gaps
    for c in chunks:
        size = len(range(len(lengths))[c])
        assert size <= 16 and (size == 1 or size * lengths[c.start] <= MAX_BATCH_TOKENS)
    sizes = [len(range(len(lengths))[c]) for c in chunks]
    assert sizes[:3] == [1, 1, 2]  # 5000 and 1500 alone; 900 + 700 fit 2048
    assert sizes.count(16) >= 6  # the short ones fill whole batches
