"""The U-Net-like segmentation network of the Keras example "Image segmentation with a U-Net-like architecture"
(keras.io, F. Chollet: Xception-style SeparableConv2D downsampling with residual 1x1 strided convs, Conv2DTranspose
+ UpSampling2D upsampling, a per-pixel sigmoid map), shrunk (filters 16-64, 64x64 input), random weights with
trained-like BatchNorm; given to the pipeline as a .keras file."""
from __future__ import annotations

from pathlib import Path

from ._build import keras_file, keras_seeded
from ._entry import BuiltModel, CorpusEntry, Export, Family, Origin, SourceKind

SIZE, ROWS = 64, 32


def model():
    keras = keras_seeded(23)
    L = keras.layers
    inputs = keras.Input((SIZE, SIZE, 3), name="image")
    x = L.Activation("relu")(L.BatchNormalization()(L.Conv2D(16, 3, strides=2, padding="same")(inputs)))
    previous = x
    for filters in (32, 64):
        x = L.BatchNormalization()(L.SeparableConv2D(filters, 3, padding="same")(L.Activation("relu")(x)))
        x = L.BatchNormalization()(L.SeparableConv2D(filters, 3, padding="same")(L.Activation("relu")(x)))
        x = L.MaxPooling2D(3, strides=2, padding="same")(x)
        x = L.add([x, L.Conv2D(filters, 1, strides=2, padding="same")(previous)])
        previous = x
    for filters in (64, 32, 16):
        x = L.BatchNormalization()(L.Conv2DTranspose(filters, 3, padding="same")(L.Activation("relu")(x)))
        x = L.BatchNormalization()(L.Conv2DTranspose(filters, 3, padding="same")(L.Activation("relu")(x)))
        x = L.UpSampling2D(2)(x)
        x = L.add([x, L.Conv2D(filters, 1, padding="same")(L.UpSampling2D(2)(previous))])
        previous = x
    outputs = L.Conv2D(1, 3, activation="sigmoid", padding="same", name="mask")(x)
    return keras.Model(inputs, outputs)


def build(workdir: Path) -> BuiltModel:
    from ._data import images
    from ._export import keras_trained_like_batchnorm

    m = keras_trained_like_batchnorm(model(), seed=23)
    return keras_file(workdir, m, {"image": images(ROWS, SIZE, layout="NHWC", norm="unit", dataset="fashion",
                                                   start=1300)})


ENTRY = CorpusEntry(
    name="keras_unet", family=Family.DETECTION_SEGMENTATION, source=SourceKind.KERAS,
    origin=Origin("keras.io example 'Image segmentation with a U-Net-like architecture' (tf-keras layers)",
                  "Xception-style U-Net: SeparableConv2D, Conv2DTranspose, UpSampling2D, residual adds, sigmoid",
                  config=f"filters 16/32/64, input {SIZE}x{SIZE}x3, 1 sigmoid map"),
    export=Export("keras .keras file (model.save)", None, "batch", "none (Keras layer names)"),
    data=f"{ROWS} Fashion-MNIST test images resized to {SIZE}x{SIZE}, 3 channels, in [0, 1], NHWC; no labels",
    build=build, tags=frozenset({"fast"}))
