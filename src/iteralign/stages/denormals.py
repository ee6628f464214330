"""Flush denormal floats to zero while training on CPU: a softmax over a 49k vocabulary is full of them.

A token's probability below ~1.2e-38 is a *denormal* float32, and x86 cores handle those in slow microcode: on the
SFT/DPO answer head (``sft_loss``), where ``exp(log_softmax(logits))`` of a trained model's logits gives a few per
cent of such values, ``exp`` ran 24x slower (14.5 ms against 0.6 ms per 85 x 49,152 chunk) and the log-softmax 4x
(BENCHMARKS.md, "LoRA steps without dropout or casts"). Flushing them (FTZ/DAZ, ``torch.set_flush_denormal``) changes
only values that are zero for every purpose of the loss.
"""

from __future__ import annotations

import contextlib


@contextlib.contextmanager
def flush_denormals():
    """Within the block (or decorated function), denormals are flushed to zero; the default (off) after it.

    PyTorch has no getter for the mode, so a caller that had switched it on itself must switch it on again after.
    """
    import torch

    supported = torch.set_flush_denormal(True)
    try:
        yield supported
    finally:
        if supported:
            torch.set_flush_denormal(False)
