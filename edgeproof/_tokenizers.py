"""Tokenizers that Python, the edge runtime and the browser (JavaScript) apply identically.

Each class states its rule exactly, in Python and in JavaScript, so that the web demo and the device
runtime can re-implement it byte for byte. A tokenizer serializes to plain JSON (``to_dict``) and
that dict is all another implementation needs. numpy and the standard library only: this module
must stay importable where neither TensorFlow nor PyTorch is installed.
"""
from __future__ import annotations

import json
import os
import re
import sys
import tempfile
import unicodedata
from collections import Counter
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence, Union

import numpy as np

__all__ = [
    "IMDB_FILTERS", "JS_WHITESPACE", "ImdbTokenizer", "WordTokenizer",
    "pad_sequences_pre", "tokenizer_from_dict",
]

PathLike = Union[str, Path]

# --------------------------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------------------------


def pad_sequences_pre(sequences: Iterable[Sequence[int]], maxlen: int, value: int = 0) -> np.ndarray:
    """Keras ``pad_sequences`` defaults: padding='pre', truncating='pre', int32.

    A sequence longer than ``maxlen`` keeps its LAST ``maxlen`` ids; a shorter one gets ``value``
    in front. JS: ``ids.slice(-maxlen)`` then left-fill with zeros.
    """
    if maxlen < 1:
        raise ValueError(f"maxlen must be >= 1, got {maxlen}")
    seqs = list(sequences)
    out = np.full((len(seqs), maxlen), value, dtype=np.int32)
    for i, seq in enumerate(seqs):
        tail = np.asarray(seq, dtype=np.int32)[-maxlen:]
        if len(tail):
            out[i, maxlen - len(tail):] = tail
    return out


def _write_json(path: PathLike, data: dict) -> Path:
    """Write JSON atomically (temp file in the same folder, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, ensure_ascii=False)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _read_json(path: PathLike) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def _check_type(d: Mapping[str, Any], expected: str) -> None:
    if d.get("type") != expected:
        raise ValueError(f"not a {expected!r} tokenizer dict (type={d.get('type')!r})")


# --------------------------------------------------------------------------------------------
# IMDb: the old Keras text_to_word_sequence + keras.datasets.imdb id scheme
# --------------------------------------------------------------------------------------------

IMDB_FILTERS = '!"#$%&()*+,-./:;<=>?@[\\]^_`{|}~\t\n'
_IMDB_TABLE = {ord(c): " " for c in IMDB_FILTERS}
_IMDB_TABLE.update({ord(c): ord(c) + 32 for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"})


class ImdbTokenizer:
    """Raw review text -> the ids of ``keras.datasets.imdb.load_data(num_words)`` + ``pad_sequences``.

    Rule (old Keras ``text_to_word_sequence`` under Python 2, then the load_data id scheme):

    1. Lowercase ASCII ``A``-``Z`` only (``É`` stays ``É``).
    2. Replace each character of ``!"#$%&()*+,-./:;<=>?@[\\]^_`{|}~``, TAB and LF by a space.
    3. Split on the space character ``' '`` only (CR, NBSP... stay inside words); drop empty strings.
    4. A word of rank r (1 = most frequent) gets id ``r + 3``; an id ``>= num_words`` becomes 2 (oov).
       A word that is not in the word index is dropped (``unknown="drop"``, as the dataset does) or
       becomes 2 (``unknown="oov"``).
    5. Prepend 1 (start), then pad/truncate 'pre' to ``maxlen`` with 0 (keep the LAST ids), int32.

    JavaScript, given ``d = tokenizer.to_dict()``::

        const words = text.replace(/[A-Z]/g, c => c.toLowerCase())
          .replace(/[!"#$%&()*+,\\-./:;<=>?@[\\\\\\]^_`{|}~\\t\\n]/g, ' ')
          .split(' ').filter(w => w.length > 0);
        // id: d.vocab.indexOf(w) + 4 (use a Map), else 2 if w in d.rare_words or d.unknown == "oov",
        // else dropped; then [1, ...ids].slice(-maxlen), zeros in front.
    """

    TYPE = "imdb"
    PAD, START, OOV, INDEX_FROM = 0, 1, 2, 3

    def __init__(self, word_index: Union[Mapping[str, int], Sequence[str]], num_words: int = 10000,
                 maxlen: int = 200, unknown: str = "drop"):
        """``word_index``: Keras' word -> rank dict (ranks 1..N) or the words in rank order."""
        if num_words <= self.INDEX_FROM + 1:
            raise ValueError(f"num_words must be > {self.INDEX_FROM + 1}, got {num_words}")
        if unknown not in ("drop", "oov"):
            raise ValueError(f"unknown must be 'drop' or 'oov', got {unknown!r}")
        self.words = self._ranked_words(word_index)
        self.num_words, self.maxlen, self.unknown = int(num_words), int(maxlen), unknown
        first_oov = self.num_words - self.INDEX_FROM - 1  # words[first_oov:] have id >= num_words
        self._ids = {w: (r + self.INDEX_FROM + 1 if r < first_oov else self.OOV)
                     for r, w in enumerate(self.words)}

    @staticmethod
    def _ranked_words(word_index: Union[Mapping[str, int], Sequence[str]]) -> list[str]:
        if isinstance(word_index, Mapping):
            words = sorted(word_index, key=word_index.__getitem__)
            if [word_index[w] for w in words] != list(range(1, len(words) + 1)):
                raise ValueError("word_index ranks must be exactly 1..N (Keras imdb_word_index.json)")
        else:
            words = list(word_index)
        if not words:
            raise ValueError("word_index is empty: pass Keras' imdb_word_index.json contents")
        if len(set(words)) != len(words):
            raise ValueError("word_index has duplicate words")
        return words

    @property
    def vocab(self) -> list[str]:
        """Words that get their own id (rank 1..num_words-4), in rank order; id = position + 4."""
        return self.words[: self.num_words - self.INDEX_FROM - 1]

    @staticmethod
    def normalize(text: str) -> list[str]:
        """Steps 1-3 of the rule: ASCII-lowercase, filters -> space, split on ' ', drop empties."""
        return [w for w in text.translate(_IMDB_TABLE).split(" ") if w]

    def ids(self, text: str) -> list[int]:
        """Unpadded ids: ``[1, ...]`` (steps 1-4)."""
        words = self.normalize(text)
        if not words:
            raise ValueError("cannot encode an empty review: the text has no words after normalization")
        default = self.OOV if self.unknown == "oov" else None
        ids = [i for i in (self._ids.get(w, default) for w in words) if i is not None]
        if not ids:
            raise ValueError(f"the review has no word from the IMDb word index ({len(words)} words, "
                             f"e.g. {words[0]!r}); write it in English")
        return [self.START] + ids

    def encode(self, text: str) -> np.ndarray:
        """One review -> int32 ids of shape (maxlen,)."""
        return pad_sequences_pre([self.ids(text)], self.maxlen)[0]

    def encode_batch(self, texts: Iterable[str]) -> np.ndarray:
        """Reviews -> int32 ids of shape (n, maxlen)."""
        return pad_sequences_pre([self.ids(t) for t in texts], self.maxlen)

    def decode(self, ids: Iterable[int]) -> str:
        """Ids -> words joined by spaces; 0 (pad), 1 (start) and 3 (unused) skipped, 2 -> ``<oov>``."""
        out = []
        for i in (int(x) for x in ids):
            if i in (self.PAD, self.START, self.INDEX_FROM):
                continue
            if i == self.OOV:
                out.append("<oov>")
            elif self.INDEX_FROM < i < self.num_words:
                out.append(self.words[i - self.INDEX_FROM - 1])
            else:
                raise ValueError(f"id {i} is outside the vocabulary (0..{self.num_words - 1})")
        return " ".join(out)

    def to_dict(self, compact: bool = False) -> dict[str, Any]:
        """JSON-serializable form.

        ``vocab`` holds the words of rank 1..num_words-4 (id = index + 4). The exact form also holds
        ``rare_words`` (the other indexed words, which encode as 2), so an unknown word can be dropped
        as the dataset does. ``compact=True`` leaves them out (about 0.1 MB instead of 1 MB) and
        encodes every word outside ``vocab`` as 2: identical on the training data, it differs only for
        words that are not in the IMDb index at all (the dataset drops those).
        """
        d: dict[str, Any] = {
            "type": self.TYPE, "num_words": self.num_words, "maxlen": self.maxlen,
            "start_char": self.START, "oov_char": self.OOV, "index_from": self.INDEX_FROM,
            "pad": self.PAD, "padding": "pre", "truncating": "pre",
            "lower": "ascii", "filters": IMDB_FILTERS, "split": " ",
            "unknown": "oov" if compact else self.unknown, "vocab": self.vocab,
        }
        if not compact:
            d["rare_words"] = self.words[len(self.vocab):]
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ImdbTokenizer":
        _check_type(d, cls.TYPE)
        fixed = {"start_char": cls.START, "oov_char": cls.OOV, "index_from": cls.INDEX_FROM,
                 "filters": IMDB_FILTERS, "split": " ", "lower": "ascii"}
        for key, value in fixed.items():
            if d.get(key, value) != value:
                raise ValueError(f"unsupported imdb tokenizer setting {key}={d[key]!r} (expected {value!r})")
        words = list(d["vocab"]) + list(d.get("rare_words") or [])
        return cls(words, num_words=d["num_words"], maxlen=d["maxlen"], unknown=d.get("unknown", "drop"))

    def save(self, path: PathLike, compact: bool = False) -> Path:
        return _write_json(path, self.to_dict(compact=compact))

    @classmethod
    def load(cls, path: PathLike) -> "ImdbTokenizer":
        return cls.from_dict(_read_json(path))

    def __len__(self) -> int:
        return self.num_words


# --------------------------------------------------------------------------------------------
# Word-level tokenizer for the translator (one per language)
# --------------------------------------------------------------------------------------------

# Exactly JavaScript's \s (WhiteSpace + LineTerminator), which differs from Python's \s.
JS_WHITESPACE = ("\t\n\v\f\r \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
                 "\u2009\u200a\u2028\u2029\u202f\u205f\u3000\ufeff")
_JS_REGEX = r"/[\p{L}\p{N}]+|[^\p{L}\p{N}\s]/gu"


@lru_cache(maxsize=1)
def _word_pattern() -> re.Pattern:
    """``[\\p{L}\\p{N}]+|[^\\p{L}\\p{N}\\s]`` built from unicodedata (Python's re has no \\p{...})."""
    ranges, start = [], None
    for cp in range(sys.maxunicode + 2):
        inside = cp <= sys.maxunicode and unicodedata.category(chr(cp))[0] in "LN"
        if inside and start is None:
            start = cp
        elif not inside and start is not None:
            ranges.append(f"\\U{start:08x}-\\U{cp - 1:08x}")
            start = None
    letters = "".join(ranges)
    spaces = "".join(f"\\U{ord(c):08x}" for c in JS_WHITESPACE)
    return re.compile(f"[{letters}]+|[^{letters}{spaces}]")


_SPACE_BEFORE = re.compile(r" ([.,!?;:)])")
_SPACE_AFTER = re.compile(r"\( ")
_APOSTROPHE = re.compile(r" ?' ?")
_HYPHEN = re.compile(r" - ")


class WordTokenizer:
    """Lowercased word/punctuation tokens with a frequency vocabulary; ids for the translator.

    Tokenization rule:

    1. Lowercase: Python ``str.lower()``; JS ``text.toLowerCase()``.
    2. Tokens: a maximal run of letters/digits (Unicode general category L* or N*), or any single
       other character that is not whitespace (each punctuation mark is its own token).
       JS: ``text.toLowerCase().match(/[\\p{L}\\p{N}]+|[^\\p{L}\\p{N}\\s]/gu) ?? []``.
       Python: the same classes built from ``unicodedata`` (Unicode 14 on Python 3.11), with
       whitespace = JS ``\\s`` (``JS_WHITESPACE``), not Python's ``\\s``. On the Multi30k text this is
       identical to ``re.findall(r"[^\\W_]+|[^\\w\\s]|_", text.lower())``; both can differ only for
       characters assigned after Unicode 14 (if the browser's Unicode is newer).

    Ids: 0 ``<pad>``, 1 ``<unk>``, 2 ``<bos>``, 3 ``<eos>``, then the vocabulary, most frequent first
    (ties: first occurrence in the corpus). Unknown tokens -> 1.

    Detokenization (``decode``): stop at EOS, skip PAD/BOS, 1 -> ``<unk>``; join with single spaces;
    then, in this order, delete the space before ``. , ! ? ; : )``, the space after ``(``, the
    spaces around ``'``, and turn ``" - "`` into ``-``. JS::

        s.replace(/ ([.,!?;:)])/g, '$1').replace(/\\( /g, '(').replace(/ ?' ?/g, "'").replace(/ - /g, '-')

    It restores ~99 % of Multi30k English sentences exactly (lowercased); double quotes stay spaced,
    which sacrebleu's 13a tokenizer ignores, while ``'`` and ``-`` (which 13a keeps inside words) are
    rejoined.
    """

    TYPE = "word"
    PAD, UNK, BOS, EOS = 0, 1, 2, 3
    SPECIALS = ("<pad>", "<unk>", "<bos>", "<eos>")

    def __init__(self, tokens: Sequence[str]):
        """``tokens``: the id -> token table; the first four must be ``SPECIALS``."""
        tokens = list(tokens)
        if tuple(tokens[:4]) != self.SPECIALS:
            raise ValueError(f"the token table must start with {list(self.SPECIALS)}, got {tokens[:4]}")
        if len(set(tokens)) != len(tokens):
            raise ValueError("the token table has duplicate tokens")
        self.tokens = tokens
        self._ids = {t: i for i, t in enumerate(tokens)}

    @staticmethod
    def tokenize(text: str) -> list[str]:
        """Lowercase, then letter/digit runs and single non-space symbols (see the class docstring)."""
        return _word_pattern().findall(text.lower())

    @classmethod
    def build(cls, sentences: Iterable[str], max_size: int = 8000) -> "WordTokenizer":
        """The 4 specials plus the most frequent tokens (ties: first occurrence), ``max_size`` in all."""
        if max_size <= len(cls.SPECIALS):
            raise ValueError(f"max_size must be > {len(cls.SPECIALS)}, got {max_size}")
        counts: Counter = Counter()
        for sentence in sentences:
            counts.update(cls.tokenize(sentence))
        for special in cls.SPECIALS:  # "<unk>" cannot come out of tokenize, but be safe
            counts.pop(special, None)
        if not counts:
            raise ValueError("cannot build a vocabulary from no text: the sentences are empty")
        # Counter keeps first-insertion order and most_common sorts stably: ties keep first occurrence.
        common = counts.most_common(max_size - len(cls.SPECIALS))
        return cls(list(cls.SPECIALS) + [t for t, _ in common])

    def encode(self, text: str, max_len: int = 32, bos: bool = False, eos: bool = True) -> np.ndarray:
        """Text -> int32 ids of shape (max_len,): [BOS] tokens [EOS] then PAD; tokens cut so EOS fits."""
        room = max_len - int(bos) - int(eos)
        if room < 1:
            raise ValueError(f"max_len={max_len} leaves no room for a token with bos={bos}, eos={eos}")
        tokens = self.tokenize(text)
        if not tokens:
            raise ValueError("cannot encode an empty sentence: the text has no tokens")
        ids = [self._ids.get(t, self.UNK) for t in tokens[:room]]
        ids = [self.BOS] * bos + ids + [self.EOS] * eos
        out = np.full(max_len, self.PAD, dtype=np.int32)
        out[: len(ids)] = ids
        return out

    def encode_batch(self, texts: Iterable[str], max_len: int = 32, bos: bool = False,
                     eos: bool = True) -> np.ndarray:
        """Sentences -> int32 ids of shape (n, max_len)."""
        rows = [self.encode(t, max_len=max_len, bos=bos, eos=eos) for t in texts]
        return np.stack(rows) if rows else np.zeros((0, max_len), dtype=np.int32)

    def decode_tokens(self, ids: Iterable[int]) -> list[str]:
        """Ids -> tokens: stop at EOS, skip PAD and BOS, 1 -> ``<unk>``."""
        out = []
        for i in (int(x) for x in ids):
            if i == self.EOS:
                break
            if i in (self.PAD, self.BOS):
                continue
            if not 0 <= i < len(self.tokens):
                raise ValueError(f"id {i} is outside the vocabulary (0..{len(self.tokens) - 1})")
            out.append(self.tokens[i])
        return out

    @staticmethod
    def detokenize(tokens: Sequence[str]) -> str:
        """Join tokens into text (the rule in the class docstring)."""
        s = " ".join(tokens)
        s = _SPACE_BEFORE.sub(r"\1", s)
        s = _SPACE_AFTER.sub("(", s)
        s = _APOSTROPHE.sub("'", s)
        return _HYPHEN.sub("-", s)

    def decode(self, ids: Iterable[int]) -> str:
        """Ids -> text, good enough for BLEU against the raw reference."""
        return self.detokenize(self.decode_tokens(ids))

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.TYPE, "lower": True, "pattern_js": _JS_REGEX,
                "pad": self.PAD, "unk": self.UNK, "bos": self.BOS, "eos": self.EOS,
                "tokens": list(self.tokens)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "WordTokenizer":
        _check_type(d, cls.TYPE)
        if d.get("pattern_js", _JS_REGEX) != _JS_REGEX:
            raise ValueError(f"unsupported word tokenizer pattern {d['pattern_js']!r} (expected {_JS_REGEX})")
        return cls(d["tokens"])

    def save(self, path: PathLike) -> Path:
        return _write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: PathLike) -> "WordTokenizer":
        return cls.from_dict(_read_json(path))

    def __len__(self) -> int:
        return len(self.tokens)


_TYPES = {ImdbTokenizer.TYPE: ImdbTokenizer, WordTokenizer.TYPE: WordTokenizer}


def tokenizer_from_dict(d: Mapping[str, Any]) -> Union[ImdbTokenizer, WordTokenizer]:
    """Rebuild a tokenizer from its ``to_dict()`` form, dispatching on ``d["type"]``."""
    kind = d.get("type") if isinstance(d, Mapping) else None
    if kind not in _TYPES:
        raise ValueError(f"unknown tokenizer type {kind!r}; known: {', '.join(sorted(_TYPES))}")
    return _TYPES[kind].from_dict(d)
