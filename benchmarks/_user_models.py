"""The models a user might bring, shared by tests/test_user_models.py and `python -m benchmarks.user_models`: each
builder writes (or returns) the source model, each `*_sample(n)` the sample data's arrays. The torch
factories are importable as `benchmarks._user_models:NAME` (for `edgeproof convert --torch`).
TensorFlow and PyTorch are imported inside the builders only."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import numpy as np


def keras_seeded():
    """tf-keras with every random seed set, so that the Keras models come out the same each time."""
    from edgeproof._frameworks import import_tf_keras

    keras = import_tf_keras()
    keras.utils.set_random_seed(0)
    return keras


# -- PyTorch -----------------------------------------------------------------------------------------------------

def tiny_encoder():
    """A Hugging-Face-style text classifier: int64 token ids + attention mask, a dict of two outputs."""
    import torch
    from torch import nn

    class TinyEncoder(nn.Module):
        def __init__(self, vocab: int = 50, d: int = 16, classes: int = 3):
            super().__init__()
            self.emb = nn.Embedding(vocab, d)
            self.q, self.k, self.v = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)
            self.norm = nn.LayerNorm(d)
            self.head = nn.Linear(d, classes)

        def forward(self, input_ids, attention_mask):
            x = self.emb(input_ids)
            scores = self.q(x) @ self.k(x).transpose(1, 2) / 4.0
            scores = scores + (1.0 - attention_mask[:, None, :].to(x.dtype)) * -1e4
            h = self.norm(x + torch.softmax(scores, -1) @ self.v(x))
            m = attention_mask[:, :, None].to(h.dtype)
            pooled = (h * m).sum(1) / m.sum(1).clamp(min=1.0)
            return {"logits": self.head(pooled), "pooled": pooled}

    torch.manual_seed(0)
    return TinyEncoder()


def encoder_weights(path: Path) -> Any:
    """"Trained" weights for tiny_encoder (different from the factory's initialisation), saved as a
    state dict to `path`; returns the module holding them, in eval mode."""
    import torch

    module = tiny_encoder()
    torch.manual_seed(5)
    for p in module.parameters():
        torch.nn.init.normal_(p, std=0.3)
    torch.save(module.state_dict(), path)
    return module.eval()


def encoder_sample(n: int) -> dict[str, np.ndarray]:
    """Token ids (1..49, zero past each row's length) and the attention mask, int64; no labels."""
    rng = np.random.default_rng(0)
    ids = rng.integers(1, 50, (n, 10)).astype(np.int64)
    mask = np.ones((n, 10), np.int64)
    for i in range(n):
        mask[i, rng.integers(3, 11):] = 0
    return {"input_ids": ids * mask, "attention_mask": mask}


def resnet_block():
    """A torchvision-free ResNet-style block: conv-BN-ReLU-conv-BN + skip, pooled, linear; NCHW images."""
    import torch
    from torch import nn

    class Block(nn.Module):
        def __init__(self, c: int = 8, classes: int = 4):
            super().__init__()
            self.stem = nn.Conv2d(3, c, 3, padding=1)
            self.conv1, self.bn1 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)
            self.conv2, self.bn2 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)
            self.fc = nn.Linear(c, classes)

        def forward(self, image):
            x = torch.relu(self.stem(image))
            y = torch.relu(self.bn1(self.conv1(x)))
            y = self.bn2(self.conv2(y))
            return self.fc(torch.relu(x + y).mean((2, 3)))

    torch.manual_seed(1)
    block = Block()
    with torch.no_grad():  # running statistics as after training, so BatchNorm really does something
        for bn in (block.bn1, block.bn2):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.uniform_(0.5, 1.5)
    return block


def resblock_onnx(path: Path) -> Any:
    """resnet_block exported to ONNX as a user would (legacy exporter, dynamic batch, input `input.1`);
    returns the torch module, in eval mode."""
    import torch

    block = resnet_block().eval()
    torch.onnx.export(block, (torch.zeros(2, 3, 16, 16),), str(path), dynamo=False,
                      input_names=["input.1"], output_names=["logits"], dynamic_axes={"input.1": {0: "n"}},
                      opset_version=13)
    return block


def resblock_sample(block: Any, n: int) -> dict[str, np.ndarray]:
    """NCHW images in [-1, 1] and the block's own argmax as labels."""
    import torch

    x = np.random.default_rng(2).uniform(-1, 1, (n, 3, 16, 16)).astype(np.float32)
    with torch.no_grad():
        labels = block(torch.from_numpy(x)).numpy().argmax(-1)
    return {"x": x, "labels": labels}


# -- Keras -------------------------------------------------------------------------------------------------------

def two_input_keras(path: Optional[Path] = None) -> Any:
    """Keras functional model: image (NHWC) + features in, class probabilities + an auxiliary output."""
    keras = keras_seeded()
    image = keras.Input((12, 12, 3), name="image")
    features = keras.Input((5,), name="features")
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3, activation="relu")(image))
    h = keras.layers.Concatenate()([x, keras.layers.Dense(4, activation="relu")(features)])
    probs = keras.layers.Dense(3, activation="softmax", name="probs")(h)
    aux = keras.layers.Dense(2, name="aux")(h)
    model = keras.Model([image, features], [probs, aux])
    if path is not None:
        model.save(str(path))
    return model


def two_input_sample(model: Any, n: int) -> dict[str, np.ndarray]:
    """Images, features and the model's own argmax as labels."""
    rng = np.random.default_rng(0)
    x = {"image": rng.uniform(0, 1, (n, 12, 12, 3)).astype(np.float32),
         "features": rng.standard_normal((n, 5)).astype(np.float32)}
    labels = model.predict([x["image"], x["features"]], verbose=0)[0].argmax(-1)
    return {**x, "labels": labels}


def wide_keras(path: Optional[Path] = None) -> Any:
    """A wide Dense stack 1024-2048-2048-1024 (8.4 M parameters, ~34 MB in fp32)."""
    keras = keras_seeded()
    inp = keras.Input((1024,), name="x")
    h = keras.layers.Dense(2048, activation="relu")(inp)
    h = keras.layers.Dense(2048, activation="relu")(h)
    model = keras.Model(inp, keras.layers.Dense(1024, name="y")(h))
    if path is not None:
        model.save(str(path))
    return model


def wide_sample(n: int) -> dict[str, np.ndarray]:
    return {"x": np.random.default_rng(4).standard_normal((n, 1024)).astype(np.float32)}


# -- ONNX --------------------------------------------------------------------------------------------------------

def lppool_onnx(path: Path) -> None:
    """An ONNX graph (as another framework would export it) with LpPool, which onnx2tf cannot convert."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w")
    fc = numpy_helper.from_array(rng.standard_normal((64, 5)).astype(np.float32) * 0.1, "fc")
    shape = numpy_helper.from_array(np.array([-1, 64], np.int64), "flat")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
         helper.make_node("LpPool", ["c"], ["p"], kernel_shape=[2, 2], strides=[2, 2], p=2),
         helper.make_node("Reshape", ["p", "flat"], ["f"]),
         helper.make_node("MatMul", ["f", "fc"], ["scores"])],
        "lppool_net", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, 8, 8])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["batch", 5])], initializer=[w, fc, shape])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="hand-built")
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))


def lppool_sample(n: int) -> dict[str, np.ndarray]:
    return {"x": np.random.default_rng(3).standard_normal((n, 3, 8, 8)).astype(np.float32)}
