"""IMDb sentiment: Embedding 10000x128 -> LSTM 128 -> Dense 1 sigmoid, sequences pre-padded to 200."""
import numpy as np

from edgeproof._registry import register
from edgeproof._spec import Distribution, Layout, Metric, ModelSpec, Profile, Task, TensorSpec

VOCAB, MAX_LEN, FIRST_WORD_ID = 10000, 200, 4  # Keras imdb ids: 0 pad, 1 start, 2 oov, 3 unused


def _probe(n: int, rng: np.random.Generator) -> dict:
    """Pre-padded sequences of random length, as real reviews look after tokenization."""
    tokens = np.zeros((n, MAX_LEN), dtype=np.int32)
    for i, length in enumerate(rng.integers(20, MAX_LEN + 1, size=n)):
        tokens[i, MAX_LEN - length] = 1
        tokens[i, MAX_LEN - length + 1:] = rng.integers(FIRST_WORD_ID, VOCAB, size=length - 1)
    return {"tokens": tokens}


SPEC = register(ModelSpec(
    name="imdb_lstm",
    task=Task.BINARY_CLASSIFICATION,
    dataset="imdb",
    description="Binary review sentiment from word ids (10 000-word vocabulary, length 200, pre-padded).",
    inputs=(TensorSpec("tokens", (None, MAX_LEN), "int32", Layout.NT, Distribution.INTEGER, (0, VOCAB)),),
    outputs=(TensorSpec("positive", (None, 1), "float32", Layout.NF),),
    metric=Metric("accuracy", higher_is_better=True, unit="percentage points"),
    quality_bar=">= 85 % test accuracy",
    profiles={
        "fast": Profile(epochs=1, batch_size=64, train_samples=2000, test_samples=1000),
        "default": Profile(epochs=2, batch_size=64, train_samples=25000),
        "full": Profile(epochs=4, batch_size=64),
    },
    architecture={"vocab_size": VOCAB, "embed_dim": 128, "lstm_units": 128, "max_len": MAX_LEN},
    probe_fn=_probe,
))
