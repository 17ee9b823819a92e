"""Keras' DenseNet121 (tf_keras.applications.DenseNet121, weights=None: dense blocks of concatenations, BN-ReLU-Conv,
average-pool transitions) at 64x64, 10 classes, trained-like BatchNorm statistics, converted to ONNX by tf2onnx at
opset 15 (channels-last input, dynamic batch)."""
from __future__ import annotations

from pathlib import Path

from ._build import keras_seeded, onnx_from_keras
from ._entry import BuiltModel, CorpusEntry, Export, Family, Origin, SourceKind

SIZE, ROWS, OPSET = 64, 32, 15
ARGS = dict(input_shape=(SIZE, SIZE, 3), weights=None, classes=10)


def build(workdir: Path) -> BuiltModel:
    from ._data import images
    from ._export import keras_trained_like_batchnorm

    keras = keras_seeded(15)
    model = keras_trained_like_batchnorm(keras.applications.DenseNet121(**ARGS), seed=15)
    return onnx_from_keras(workdir, model, {"input_1": images(ROWS, SIZE, layout="NHWC", start=900)}, OPSET)


ENTRY = CorpusEntry(
    name="keras_densenet121", family=Family.CNN, source=SourceKind.ONNX,
    origin=Origin("tf-keras", "tf_keras.applications.DenseNet121", config=str(ARGS)),
    export=Export("tf2onnx (tf2onnx.convert.from_keras)", OPSET, "batch", "tf2onnx's names; NHWC input"),
    data=f"{ROWS} MNIST test digits resized to {SIZE}x{SIZE}, 3 channels, ImageNet-normalised (densenet "
         f"preprocess_input, torch mode), NHWC; no labels",
    build=build)
