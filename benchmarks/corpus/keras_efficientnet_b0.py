"""Keras' EfficientNetB0 (tf_keras.applications.EfficientNetB0, weights=None: Rescaling + Normalization layers
inside, MBConv with squeeze-excitation, swish) at 96x96, 10 classes, trained-like BatchNorm statistics, given to
the pipeline as a .keras file."""
from __future__ import annotations

from pathlib import Path

from ._build import keras_file, keras_seeded
from ._entry import BuiltModel, CorpusEntry, Export, Family, Origin, SourceKind

SIZE, ROWS = 96, 32
ARGS = dict(input_shape=(SIZE, SIZE, 3), weights=None, classes=10)


def build(workdir: Path) -> BuiltModel:
    from ._data import images
    from ._export import keras_trained_like_batchnorm

    keras = keras_seeded(14)
    model = keras_trained_like_batchnorm(keras.applications.EfficientNetB0(**ARGS), seed=14)
    return keras_file(workdir, model, {"input_1": images(ROWS, SIZE, layout="NHWC", norm="255", dataset="fashion",
                                                         start=800)})


ENTRY = CorpusEntry(
    name="keras_efficientnet_b0", family=Family.CNN, source=SourceKind.KERAS,
    origin=Origin("tf-keras", "tf_keras.applications.EfficientNetB0", config=str(ARGS)),
    export=Export("keras .keras file (model.save)", None, "batch", "none (Keras layer names)"),
    data=f"{ROWS} Fashion-MNIST test images resized to {SIZE}x{SIZE}, 3 channels, in [0, 255] (the model normalises "
         f"itself), NHWC; no labels",
    build=build)
