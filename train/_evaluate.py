"""Task metrics, framework-neutral: every model (and later every artifact) is judged through a
`predict(inputs: dict[name, array]) -> array` callable on canonical-layout numpy inputs."""
from __future__ import annotations

from typing import Any, Callable, Optional

import numpy as np

from edgeproof._spec import ModelSpec, Task

from ._taskdata import TaskData

Predict = Callable[[dict[str, np.ndarray]], np.ndarray]
CONFIDENCE = 0.9


def batched(predict: Predict, inputs: dict[str, np.ndarray], batch_size: int = 256) -> np.ndarray:
    n = len(next(iter(inputs.values())))
    return np.concatenate([predict({k: v[i:i + batch_size] for k, v in inputs.items()})
                           for i in range(0, n, batch_size)])


def greedy_decode(predict: Predict, source_ids: np.ndarray, bos: int, eos: int, batch_size: int = 500) -> np.ndarray:
    """Greedy decoding with a (source ids, target prefix) -> logits model at a fixed maximum length.
    Returns the generated ids (without BOS), zero after EOS."""
    out = []
    for start in range(0, len(source_ids), batch_size):
        src = source_ids[start:start + batch_size]
        n, max_len = src.shape
        tgt = np.zeros((n, max_len), dtype=src.dtype)
        tgt[:, 0] = bos
        done = np.zeros(n, dtype=bool)
        for t in range(max_len - 1):
            logits = predict({"source_ids": src, "target_ids": tgt})
            nxt = logits[:, t].argmax(-1).astype(src.dtype)
            tgt[:, t + 1] = np.where(done, 0, nxt)
            done |= nxt == eos
            if done.all():
                break
        out.append(tgt[:, 1:])
    return np.concatenate(out)


def bleu(hypotheses: list[str], references: list[str]) -> float:
    import sacrebleu

    return float(sacrebleu.corpus_bleu(hypotheses, [references]).score)


def evaluate(spec: ModelSpec, predict: Predict, data: TaskData, judge: Optional[Predict] = None) -> dict[str, Any]:
    """The spec's task metric on the test split, plus task-specific details."""
    if spec.task is Task.REGRESSION:
        pred = batched(predict, data.x_test)
        result: dict[str, Any] = {"mse": float(np.mean((pred - data.y_test) ** 2)),
                                  "trivial_mse": float(np.mean((data.y_train.mean() - data.y_test) ** 2))}
        (name, x_train), = data.x_train.items()
        if x_train.shape[1:] == (1,):  # 1-D regression: compare the fitted line with least squares
            at = predict({name: np.array([[0.0], [1.0]], dtype=np.float32)})[:, 0]
            design = np.hstack([x_train.astype(np.float64), np.ones((len(x_train), 1))])
            (w_ls, b_ls), *_ = np.linalg.lstsq(design, data.y_train[:, 0].astype(np.float64), rcond=None)
            result.update(weight=float(at[1] - at[0]), bias=float(at[0]), lstsq_weight=float(w_ls),
                          lstsq_bias=float(b_ls), weight_error=float(abs(at[1] - at[0] - w_ls)),
                          bias_error=float(abs(at[0] - b_ls)))
        return result
    if spec.task is Task.CLASSIFICATION:
        pred = batched(predict, data.x_test)
        return {"accuracy": float(np.mean(pred.argmax(-1) == data.y_test) * 100)}
    if spec.task is Task.BINARY_CLASSIFICATION:
        pred = batched(predict, data.x_test)
        return {"accuracy": float(np.mean((pred[:, 0] > 0.5) == (data.y_test > 0.5)) * 100)}
    if spec.task is Task.TRANSLATION:
        from ._tokenizers import tokenizer_from_dict

        pre = data.preprocessing
        target = tokenizer_from_dict(pre["target_tokenizer"])
        ids = greedy_decode(predict, data.x_test["source_ids"], pre["bos"], pre["eos"])
        hypotheses = [target.decode(row) for row in ids]
        return {"bleu": bleu(hypotheses, data.extras["test_references"]),
                "examples": [{"source": s, "reference": r, "hypothesis": h} for s, r, h in
                             zip(data.extras["test_sources"][:5], data.extras["test_references"][:5], hypotheses[:5])]}
    if spec.task is Task.GENERATION:
        if judge is None:
            raise ValueError("the GAN is judged by the project's mnist_cnn: train mnist_cnn first "
                             "(edgeproof train --model mnist_cnn --framework keras)")
        images = batched(predict, data.x_test)
        probs = batched(judge, {"image": ((images.reshape(-1, 28, 28, 1) + 1.0) / 2.0).astype(np.float32)})
        confident = probs.max(-1) >= CONFIDENCE
        classes = sorted(set(probs.argmax(-1)[confident].tolist()))
        return {"confident_fraction": float(confident.mean() * 100), "classes_present": classes,
                "all_digits_present": len(classes) == 10}
    raise ValueError(f"no evaluation for task {spec.task}")
