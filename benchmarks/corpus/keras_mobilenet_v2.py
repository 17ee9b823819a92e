"""Keras' MobileNetV2 (tf_keras.applications.MobileNetV2, weights=None) at alpha 0.35, 96x96, 10 classes, with
trained-like BatchNorm statistics, given to the pipeline as a .keras file."""
from __future__ import annotations

from pathlib import Path

from ._build import keras_file, keras_seeded
from ._entry import BuiltModel, CorpusEntry, Export, Family, Origin, SourceKind

SIZE, ROWS = 96, 48
ARGS = dict(input_shape=(SIZE, SIZE, 3), alpha=0.35, weights=None, classes=10)


def build(workdir: Path) -> BuiltModel:
    from ._data import images
    from ._export import keras_trained_like_batchnorm

    keras = keras_seeded(12)
    model = keras_trained_like_batchnorm(keras.applications.MobileNetV2(**ARGS), seed=12)
    return keras_file(workdir, model, {"input_1": images(ROWS, SIZE, layout="NHWC", norm="pm1", start=600)})


ENTRY = CorpusEntry(
    name="keras_mobilenet_v2", family=Family.CNN, source=SourceKind.KERAS,
    origin=Origin("tf-keras", "tf_keras.applications.MobileNetV2", config=str(ARGS)),
    export=Export("keras .keras file (model.save)", None, "batch", "none (Keras layer names)"),
    data=f"{ROWS} MNIST test digits resized to {SIZE}x{SIZE}, 3 channels, scaled to [-1, 1] as "
         f"mobilenet_v2.preprocess_input does, NHWC; no labels: random weights",
    build=build)
