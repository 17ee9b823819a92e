"""IMDb sentiment: Embedding 10000x128 -> LSTM 128 -> Dense 1 sigmoid, sequences pre-padded to 200.

No masking and no pack_padded_sequence: both frameworks read the same zero-pre-padded sequence of
fixed length 200, so the Keras and PyTorch graphs agree and export with static shapes."""
import numpy as np

from edgeproof._registry import register
from edgeproof._quant import QuantMode
from edgeproof._spec import (DEFAULT_BUDGETS, Distribution, Framework, Layout, Metric, ModelSpec, ParityBudget, Profile,
                             Task, TensorSpec)

VOCAB, MAX_LEN, FIRST_WORD_ID = 10000, 200, 4  # Keras imdb ids: 0 pad, 1 start, 2 oov, 3 unused


def _probe(n: int, rng: np.random.Generator) -> dict:
    """Pre-padded sequences of random length, as real reviews look after tokenization."""
    tokens = np.zeros((n, MAX_LEN), dtype=np.int32)
    for i, length in enumerate(rng.integers(20, MAX_LEN + 1, size=n)):
        tokens[i, MAX_LEN - length] = 1
        tokens[i, MAX_LEN - length + 1:] = rng.integers(FIRST_WORD_ID, VOCAB, size=length - 1)
    return {"tokens": tokens}


def build_keras(vocab_size=VOCAB, embed_dim=128, lstm_units=128, max_len=MAX_LEN):
    from edgeproof._frameworks import import_tf_keras

    keras = import_tf_keras()
    tokens = keras.Input((max_len,), dtype="int32", name="tokens")
    x = keras.layers.Embedding(vocab_size, embed_dim)(tokens)
    x = keras.layers.LSTM(lstm_units)(x)
    out = keras.layers.Dense(1, activation="sigmoid", name="positive")(x)
    return keras.Model(tokens, out, name="imdb_lstm")


def build_torch(vocab_size=VOCAB, embed_dim=128, lstm_units=128, max_len=MAX_LEN):
    import torch
    from torch import nn

    class ImdbLSTM(nn.Module):
        """`logits` for training, `forward` returns P(positive) (the deployed graph)."""

        def __init__(self):
            super().__init__()
            self.embedding = nn.Embedding(vocab_size, embed_dim)
            self.lstm = nn.LSTM(embed_dim, lstm_units, batch_first=True)
            # Keras' LSTM has one bias per gate, PyTorch's two (b_ih + b_hh, redundant). Keep b_hh as
            # a zero buffer so both frameworks have the same parameters (gate order i, f, g/c, o).
            b_hh = self.lstm.bias_hh_l0
            del self.lstm._parameters["bias_hh_l0"]
            self.lstm.register_buffer("bias_hh_l0", torch.zeros_like(b_hh.data))
            self.lstm._init_flat_weights()
            self.head = nn.Linear(lstm_units, 1)
            self._init_like_keras()

        @torch.no_grad()
        def _init_like_keras(self):
            """Keras' initializers, so both frameworks start from the same distributions: embedding
            U(-0.05, 0.05), input kernel Glorot-uniform, recurrent kernel orthogonal, zero bias with
            the forget gate's at 1 (unit_forget_bias), Glorot-uniform dense layer."""
            nn.init.uniform_(self.embedding.weight, -0.05, 0.05)
            nn.init.xavier_uniform_(self.lstm.weight_ih_l0)
            for gate in self.lstm.weight_hh_l0.chunk(4, dim=0):
                nn.init.orthogonal_(gate)
            self.lstm.bias_ih_l0.zero_()
            self.lstm.bias_ih_l0[lstm_units:2 * lstm_units] = 1.0
            nn.init.xavier_uniform_(self.head.weight)
            self.head.bias.zero_()

        def logits(self, tokens):
            _, (h, _) = self.lstm(self.embedding(tokens.long()))
            return self.head(h[-1])

        def forward(self, tokens):
            return torch.sigmoid(self.logits(tokens))

    return ImdbLSTM()


def prepare_data(raw, profile, seed):
    from edgeproof.train._taskdata import TaskData, subset
    from edgeproof._tokenizers import ImdbTokenizer

    x_train, y_train = subset({"tokens": raw["x_train"]}, raw["y_train"], profile.train_samples, seed)
    x_test, y_test = subset({"tokens": raw["x_test"]}, raw["y_test"], profile.test_samples, seed + 1)
    tokenizer = ImdbTokenizer(raw["word_index"], num_words=VOCAB, maxlen=MAX_LEN)
    return TaskData({"tokens": x_train["tokens"].astype("int32")}, y_train.astype("float32"),
                    {"tokens": x_test["tokens"].astype("int32")}, y_test.astype("float32"),
                    preprocessing={"kind": "text", "tokenizer": tokenizer.to_dict(), "labels": ["negative", "positive"]},
                    source=raw["source"])


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
        "fast": Profile(epochs=2, batch_size=64, train_samples=3000, test_samples=500, learning_rate=3e-3),
        "default": Profile(epochs=2, batch_size=64, train_samples=12000, test_samples=1000),
        "full": Profile(epochs=3, batch_size=64),
    },
    budgets={
        **DEFAULT_BUDGETS,
        # TFLite's fused UNIDIRECTIONAL_SEQUENCE_LSTM kernel (the reference kernels too, no delegate)
        # drifts from Keras over long sequences, while Keras matches a float64 numpy LSTM to 1.3e-6:
        # measured max |diff| 2.5e-5 after 100 tokens, 8e-3 after 185, 3.2e-2 after 200 on the default
        # checkpoint (`python -m edgeproof.verify.lstm_drift`). fp32/fp16 budgets cover that drift;
        # the accuracy budget stays tight.
        QuantMode.FP32: ParityBudget(max_abs_error=5e-2, min_cosine=0.999, max_metric_drop=0.5, min_top1_agreement=0.98),
        QuantMode.FP16: ParityBudget(max_abs_error=5e-2, min_cosine=0.999, max_metric_drop=0.5, min_top1_agreement=0.98),
    },
    architecture={"vocab_size": VOCAB, "embed_dim": 128, "lstm_units": 128, "max_len": MAX_LEN},
    probe_fn=_probe,
    builders={Framework.KERAS: build_keras, Framework.TORCH: build_torch},
    prepare_data=prepare_data,
    export_batch_size=1,  # a static batch lets TFLite fuse the LSTM (builtin UNIDIRECTIONAL_SEQUENCE_LSTM)
    quality_check=lambda r: r["accuracy"] >= 85.0,
))
