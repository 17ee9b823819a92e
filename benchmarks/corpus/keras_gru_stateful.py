"""A Keras GRU with explicit state (tf_keras.layers.GRU(return_state=True) fed an initial_state input; the
reset_after CuDNN-compatible variant Keras uses by default): Embedding -> GRU -> sigmoid score, plus the next
state. Random weights; given to the pipeline as a .keras file."""
from __future__ import annotations

from pathlib import Path

from ._build import keras_file, keras_seeded
from ._entry import BuiltModel, CorpusEntry, Export, Family, Origin, SourceKind

CHUNK, ROWS, HIDDEN = 32, 48, 48


def model():
    keras = keras_seeded(22)
    ids = keras.Input((CHUNK,), dtype="int32", name="tokens")
    state = keras.Input((HIDDEN,), name="state")
    seq = keras.layers.Embedding(30522, 32)(ids)
    last, next_state = keras.layers.GRU(HIDDEN, return_state=True)(seq, initial_state=state)
    score = keras.layers.Dense(1, activation="sigmoid", name="score")(last)
    return keras.Model([ids, state], [score, keras.layers.Identity(name="next_state")(next_state)])


def build(workdir: Path) -> BuiltModel:
    import numpy as np

    from ._data import imdb_reviews, tokenize

    m = model()
    texts, _ = imdb_reviews(ROWS, start=4000)
    ids = tokenize(texts, 2 * CHUNK)["input_ids"].astype(np.int32)
    _, state = m.predict([ids[:, :CHUNK], np.zeros((ROWS, HIDDEN), np.float32)], verbose=0)
    return keras_file(workdir, m, {"tokens": ids[:, CHUNK:], "state": state.astype(np.float32)})


ENTRY = CorpusEntry(
    name="keras_gru_stateful", family=Family.RECURRENT, source=SourceKind.KERAS,
    origin=Origin("tf-keras", "tf_keras.layers.GRU(return_state=True) with initial_state",
                  config=f"embedding 30522x32, hidden {HIDDEN}, chunk {CHUNK}"),
    export=Export("keras .keras file (model.save)", None, "batch", "two inputs (tokens int32, state), two outputs"),
    data=f"{ROWS} IMDb test reviews as WordPiece ids: the second {CHUNK}-token chunk, with the GRU state after the "
         f"first (int32 ids + float state); no labels",
    build=build)
