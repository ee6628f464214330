"""What denormal floats cost the answer head's softmax on this CPU, with and without flushing them.

A chunk of the SFT/DPO answer head (``stages/sft_loss``: 85 answer tokens x 49,152 vocabulary) with logits spread as a
trained model's are (scale 15: a few per cent of the probabilities fall below float32's smallest normal, 1.2e-38):
the best of 10 ``log_softmax`` and ``exp`` calls, denormals kept, then flushed (``stages.denormals``). Run:
    .venv/bin/python bench/denormals.py
"""

from __future__ import annotations

import timeit

import torch

from iteralign.stages.denormals import flush_denormals


def best_ms(fn, repeats: int = 10) -> float:
    """The best of ``repeats`` calls after one warm-up, in milliseconds."""
    fn()
    return 1e3 * min(timeit.repeat(fn, number=1, repeat=repeats))


def main() -> None:
    torch.manual_seed(0)
    logits = torch.randn(85, 49152) * 15
    logp, out = torch.empty_like(logits), torch.empty_like(logits)
    torch.log_softmax(logits, -1, out=logp)
    probs = logp.exp()
    share = ((probs > 0) & (probs < torch.finfo(torch.float32).tiny)).float().mean().item()
    print(f"threads {torch.get_num_threads()}, denormal probabilities {100 * share:.1f}%")
    work = {"log_softmax": lambda: torch.log_softmax(logits, -1, out=logp), "exp": lambda: torch.exp(logp, out=out)}
    kept = {k: best_ms(f) for k, f in work.items()}
    with flush_denormals():
        flushed = {k: best_ms(f) for k, f in work.items()}
    for k in work:
        print(f"{k:12} kept {kept[k]:6.2f} ms  flushed {flushed[k]:6.2f} ms  ratio {kept[k] / flushed[k]:5.1f}x")


if __name__ == "__main__":
    main()
