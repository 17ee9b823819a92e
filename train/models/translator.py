"""German -> English Transformer encoder-decoder (d_model 128, 4 heads, FF 512, vocab ~8000).

The deployed form is one model (source ids, target prefix ids) -> next-token logits at every
target position, at fixed maximum lengths; greedy decoding is done by the host. Both frameworks
implement the same math by hand (learned positions, post-LayerNorm blocks, additive -1e4 masks),
so their parameters correspond one to one."""
import numpy as np

from edgeproof._quant import QuantMode
from edgeproof._registry import register
from edgeproof._spec import (DEFAULT_BUDGETS, Framework, Layout, Metric, ModelSpec, ParityBudget, Profile, Task,
                             TensorSpec)

VOCAB, MAX_LEN = 8000, 32
PAD, UNK, BOS, EOS = 0, 1, 2, 3
# -1e4, not -1e9: fp16 artifacts store this constant in half precision, where -1e9 becomes -inf
# and `0 * -inf` turns every unmasked score into NaN (edgeproof verify caught it: the TF.js fp16
# translator decoded BLEU 0). exp(-1e4) is 0 in float32, so fp32 outputs are unchanged.
MASK_VALUE, LN_EPS = -1e4, 1e-5


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


def build_keras(src_vocab=VOCAB, tgt_vocab=VOCAB, max_len=MAX_LEN, d_model=128, heads=4, ff_dim=512,
                encoder_layers=2, decoder_layers=2, dropout=0.1):
    from edgeproof._frameworks import import_tensorflow, import_tf_keras

    tf, keras = import_tensorflow(), import_tf_keras()
    layers = keras.layers
    head_dim = d_model // heads

    class Embed(layers.Layer):
        def __init__(self, vocab, **kw):
            super().__init__(**kw)
            self.tokens = layers.Embedding(vocab, d_model)
            self.positions = layers.Embedding(max_len, d_model)

        def call(self, ids):
            return self.tokens(ids) + self.positions(tf.range(max_len))[None]

    class Attention(layers.Layer):
        def __init__(self, **kw):
            super().__init__(**kw)
            self.q, self.k, self.v, self.o = (layers.Dense(d_model) for _ in range(4))

        def split(self, x):  # (B, L, D) -> (B, H, L, Dh)
            return tf.transpose(tf.reshape(x, (-1, max_len, heads, head_dim)), (0, 2, 1, 3))

        def call(self, query, value, keep):  # keep: 1 where attention is allowed, broadcast to (B, H, T, S)
            q, k, v = self.split(self.q(query)), self.split(self.k(value)), self.split(self.v(value))
            scores = tf.matmul(q, k, transpose_b=True) / float(np.sqrt(head_dim)) + (1.0 - keep) * MASK_VALUE
            out = tf.matmul(tf.nn.softmax(scores, axis=-1), v)
            return self.o(tf.reshape(tf.transpose(out, (0, 2, 1, 3)), (-1, max_len, d_model)))

    class Block(layers.Layer):
        """Post-LN residual block: self-attention, [cross-attention], feed-forward."""

        def __init__(self, cross: bool, **kw):
            super().__init__(**kw)
            self.self_attn = Attention()
            self.cross_attn = Attention() if cross else None
            self.ff1, self.ff2 = layers.Dense(ff_dim, activation="relu"), layers.Dense(d_model)
            self.norms = [layers.LayerNormalization(epsilon=LN_EPS) for _ in range(3 if cross else 2)]
            self.drop = layers.Dropout(dropout)

        def call(self, x, self_keep, memory=None, memory_keep=None, training=None):
            x = self.norms[0](x + self.drop(self.self_attn(x, x, self_keep), training=training))
            if self.cross_attn is not None:
                x = self.norms[1](x + self.drop(self.cross_attn(x, memory, memory_keep), training=training))
            return self.norms[-1](x + self.drop(self.ff2(self.ff1(x)), training=training))

    src = keras.Input((max_len,), dtype="int32", name="source_ids")
    tgt = keras.Input((max_len,), dtype="int32", name="target_ids")
    src_keep = layers.Lambda(lambda s: tf.cast(tf.not_equal(s, PAD), tf.float32)[:, None, None, :],
                             name="source_mask")(src)
    causal = tf.constant(np.tril(np.ones((max_len, max_len), np.float32))[None, None])
    x = Embed(src_vocab, name="source_embedding")(src)
    for i in range(encoder_layers):
        x = Block(cross=False, name=f"encoder_{i}")(x, src_keep)
    y = Embed(tgt_vocab, name="target_embedding")(tgt)
    for i in range(decoder_layers):
        y = Block(cross=True, name=f"decoder_{i}")(y, causal, x, src_keep)
    logits = layers.Dense(tgt_vocab, name="logits")(y)
    return keras.Model([src, tgt], logits, name="translator")


def build_torch(src_vocab=VOCAB, tgt_vocab=VOCAB, max_len=MAX_LEN, d_model=128, heads=4, ff_dim=512,
                encoder_layers=2, decoder_layers=2, dropout=0.1):
    import torch
    from torch import nn

    head_dim = d_model // heads

    class Embed(nn.Module):
        def __init__(self, vocab):
            super().__init__()
            self.tokens, self.positions = nn.Embedding(vocab, d_model), nn.Embedding(max_len, d_model)
            self.register_buffer("index", torch.arange(max_len), persistent=False)

        def forward(self, ids):
            return self.tokens(ids) + self.positions(self.index)[None]

    class Attention(nn.Module):
        def __init__(self):
            super().__init__()
            self.q, self.k, self.v, self.o = (nn.Linear(d_model, d_model) for _ in range(4))

        def split(self, x):
            return x.reshape(-1, max_len, heads, head_dim).transpose(1, 2)

        def forward(self, query, value, keep):
            q, k, v = self.split(self.q(query)), self.split(self.k(value)), self.split(self.v(value))
            scores = q @ k.transpose(-1, -2) / float(np.sqrt(head_dim)) + (1.0 - keep) * MASK_VALUE
            out = torch.softmax(scores, dim=-1) @ v
            return self.o(out.transpose(1, 2).reshape(-1, max_len, d_model))

    class Block(nn.Module):
        def __init__(self, cross: bool):
            super().__init__()
            self.self_attn = Attention()
            self.cross_attn = Attention() if cross else None
            self.ff1, self.ff2 = nn.Linear(d_model, ff_dim), nn.Linear(ff_dim, d_model)
            self.norms = nn.ModuleList(nn.LayerNorm(d_model, eps=LN_EPS) for _ in range(3 if cross else 2))
            self.drop = nn.Dropout(dropout)

        def forward(self, x, self_keep, memory=None, memory_keep=None):
            x = self.norms[0](x + self.drop(self.self_attn(x, x, self_keep)))
            if self.cross_attn is not None:
                x = self.norms[1](x + self.drop(self.cross_attn(x, memory, memory_keep)))
            return self.norms[-1](x + self.drop(self.ff2(torch.relu(self.ff1(x)))))

    class Translator(nn.Module):
        def __init__(self):
            super().__init__()
            self.source_embedding, self.target_embedding = Embed(src_vocab), Embed(tgt_vocab)
            self.encoder = nn.ModuleList(Block(cross=False) for _ in range(encoder_layers))
            self.decoder = nn.ModuleList(Block(cross=True) for _ in range(decoder_layers))
            self.head = nn.Linear(d_model, tgt_vocab)
            self.register_buffer("causal", torch.tril(torch.ones(max_len, max_len))[None, None], persistent=False)

        def forward(self, source_ids, target_ids):
            src_keep = (source_ids != PAD).float()[:, None, None, :]
            x = self.source_embedding(source_ids.long())
            for block in self.encoder:
                x = block(x, src_keep)
            y = self.target_embedding(target_ids.long())
            for block in self.decoder:
                y = block(y, self.causal, x, src_keep)
            return self.head(y)

    return Translator()


def prepare_data(raw, profile, seed):
    from edgeproof.train._taskdata import TaskData
    from edgeproof._tokenizers import WordTokenizer

    rng = np.random.default_rng(seed)
    train = raw["train"]
    if profile.train_samples is not None and profile.train_samples < len(train):
        train = [train[i] for i in np.sort(rng.choice(len(train), profile.train_samples, replace=False))]
    test = raw["test"][: profile.test_samples] if profile.test_samples else raw["test"]
    src_tok = WordTokenizer.build([de for de, _ in raw["train"]], max_size=VOCAB)
    tgt_tok = WordTokenizer.build([en for _, en in raw["train"]], max_size=VOCAB)

    def encode(pairs):
        src = np.stack([src_tok.encode(de, max_len=MAX_LEN, bos=False, eos=True) for de, _ in pairs])
        full = np.stack([tgt_tok.encode(en, max_len=MAX_LEN + 1, bos=True, eos=True) for _, en in pairs])
        return src, full[:, :MAX_LEN], full[:, 1:]

    src, tgt_in, tgt_out = encode(train)
    test_src, test_in, test_out = encode(test)
    return TaskData({"source_ids": src, "target_ids": tgt_in}, tgt_out.astype("int64"),
                    {"source_ids": test_src, "target_ids": test_in}, test_out.astype("int64"),
                    preprocessing={"kind": "translation", "source_tokenizer": src_tok.to_dict(),
                                   "target_tokenizer": tgt_tok.to_dict(), "max_len": MAX_LEN,
                                   "bos": BOS, "eos": EOS, "pad": PAD},
                    extras={"test_sources": [de for de, _ in test], "test_references": [en for _, en in test]},
                    source=raw["source"])


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
        "fast": Profile(epochs=2, batch_size=64, train_samples=3000, test_samples=100, learning_rate=1e-3),
        "default": Profile(epochs=2, batch_size=64, train_samples=12000, test_samples=500, learning_rate=1e-3),
        "full": Profile(epochs=3, batch_size=64, learning_rate=1e-3),
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
    builders={Framework.KERAS: build_keras, Framework.TORCH: build_torch},
    prepare_data=prepare_data,
    quality_check=lambda r: r["bleu"] >= 20.0,
))
