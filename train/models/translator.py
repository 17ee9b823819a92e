"""German -> English Transformer encoder-decoder (d_model 128, 4 heads, FF 512, vocab ~8000).

The deployed form is one model (source ids, target prefix ids) -> next-token logits at every
target position, at fixed maximum lengths; greedy decoding is done by the host."""
import numpy as np

from edgeproof._quant import QuantMode
from edgeproof._registry import register
from edgeproof._spec import DEFAULT_BUDGETS, Layout, Metric, ModelSpec, ParityBudget, Profile, Task, TensorSpec

VOCAB, MAX_LEN = 8000, 32
PAD, UNK, BOS, EOS = 0, 1, 2, 3


def _probe(n: int, rng: np.random.Generator) -> dict:
    """Padded source sentences and target prefixes that start with BOS, as decoding sees them."""
    src = np.zeros((n, MAX_LEN), dtype=np.int32)
    tgt = np.zeros((n, MAX_LEN), dtype=np.int32)
    for i in range(n):
        s = int(rng.integers(3, MAX_LEN - 1))
        src[i, :s] = rng.integers(4, VOCAB, size=s)
        src[i, s] = EOS
        t = int(rng.integers(1, MAX_LEN))
        tgt[i, 0] = BOS
        tgt[i, 1:t] = rng.integers(4, VOCAB, size=t - 1)
    return {"source_ids": src, "target_ids": tgt}


SPEC = register(ModelSpec(
    name="translator",
    task=Task.TRANSLATION,
    dataset="multi30k",
    description="Transformer encoder-decoder trained on Multi30k German-English; BLEU by greedy decoding.",
    inputs=(
        TensorSpec("source_ids", (None, MAX_LEN), "int32", Layout.NT, value_range=(0, VOCAB)),
        TensorSpec("target_ids", (None, MAX_LEN), "int32", Layout.NT, value_range=(0, VOCAB)),
    ),
    outputs=(TensorSpec("logits", (None, MAX_LEN, VOCAB), "float32", Layout.NT),),
    metric=Metric("bleu", higher_is_better=True, unit="BLEU"),
    quality_bar="BLEU (sacrebleu) on test_2016_flickr recorded, aim >= 20",
    profiles={
        "fast": Profile(epochs=1, batch_size=64, train_samples=2000, test_samples=100, learning_rate=5e-4),
        "default": Profile(epochs=4, batch_size=64, test_samples=500, learning_rate=5e-4),
        "full": Profile(epochs=20, batch_size=64, learning_rate=5e-4),
    },
    budgets={
        **DEFAULT_BUDGETS,
        # Logits span roughly +-20 over an 8000-word vocabulary; what matters is the argmax
        # (top-1 agreement) and BLEU, which DESIGN.md bounds at 1.0 for every precision.
        QuantMode.FP32: ParityBudget(max_abs_error=1e-3, min_cosine=0.99999, max_metric_drop=0.1, min_top1_agreement=1.0),
        QuantMode.FP16: ParityBudget(max_abs_error=1e-1, min_cosine=0.9995, max_metric_drop=1.0, min_top1_agreement=0.98),
        QuantMode.DYNAMIC: ParityBudget(max_abs_error=1.0, min_cosine=0.99, max_metric_drop=1.0, min_top1_agreement=0.9),
        QuantMode.INT8: ParityBudget(max_abs_error=2.0, min_cosine=0.98, max_metric_drop=1.0, min_top1_agreement=0.9),
        QuantMode.UINT8: ParityBudget(max_abs_error=1.0, min_cosine=0.99, max_metric_drop=1.0, min_top1_agreement=0.9),
    },
    architecture={"src_vocab": VOCAB, "tgt_vocab": VOCAB, "max_len": MAX_LEN, "d_model": 128, "heads": 4,
                  "ff_dim": 512, "encoder_layers": 2, "decoder_layers": 2, "dropout": 0.1},
    probe_fn=_probe,
))
