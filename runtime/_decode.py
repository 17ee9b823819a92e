"""Greedy decoding on the host for an encoder-decoder deployed as one model
`(source ids, target prefix ids) -> next-token logits` at a fixed maximum length. numpy only: the
verify stage, the edge runtime and (as web_demo/src/greedy.js) the browser decode the same way."""
from __future__ import annotations

from typing import Callable

import numpy as np

Predict = Callable[[dict[str, np.ndarray]], np.ndarray]
StepLogits = Callable[[dict[str, np.ndarray], int], np.ndarray]


def greedy_decode(predict: Predict, source_ids: np.ndarray, bos: int, eos: int, batch_size: int = 256) -> np.ndarray:
    """Greedy decoding with a (source ids, target prefix) -> logits model at a fixed maximum length.
    Returns the generated ids (without BOS), EOS included, zero after it. Finished rows leave the
    batch, so each step runs the model on the unfinished ones only (web_demo/src/greedy.js is the same)."""
    return greedy_decode_steps(lambda feeds, t: predict(feeds)[:, t], source_ids, bos, eos, batch_size)


def greedy_decode_steps(step_logits: StepLogits, source_ids: np.ndarray, bos: int, eos: int,
                        batch_size: int = 256) -> np.ndarray:
    """greedy_decode with `step_logits(feeds, t)` giving step t's logits alone ([n, vocab]): a runtime across a
    process boundary then sends 1/T of [n, T, vocab]."""
    out = []
    for start in range(0, len(source_ids), batch_size):
        src = source_ids[start:start + batch_size]
        n, max_len = src.shape
        tgt = np.zeros((n, max_len), dtype=src.dtype)
        tgt[:, 0] = bos
        active = np.arange(n)
        for t in range(max_len - 1):
            feeds = {"source_ids": src[active], "target_ids": tgt[active]}
            nxt = step_logits(feeds, t).argmax(-1).astype(src.dtype)
            tgt[active, t + 1] = nxt
            active = active[nxt != eos]
            if not len(active):
                break
        out.append(tgt[:, 1:])
    return np.concatenate(out)
