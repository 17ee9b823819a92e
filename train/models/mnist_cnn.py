"""MNIST classifier: Conv32-Pool-Conv64-Pool-Conv64-Flatten-Dense64-Dense10 (softmax in the deployed graph)."""
from edgeproof._registry import register
from edgeproof._spec import Framework, Layout, Metric, ModelSpec, Profile, Task, TensorSpec


def build_keras(filters=(32, 64, 64), dense=64, classes=10):
    from edgeproof._frameworks import import_tf_keras

    keras = import_tf_keras()
    image = keras.Input((28, 28, 1), name="image")
    x = keras.layers.Conv2D(filters[0], 3, activation="relu")(image)
    x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Conv2D(filters[1], 3, activation="relu")(x)
    x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Conv2D(filters[2], 3, activation="relu")(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(dense, activation="relu")(x)
    out = keras.layers.Dense(classes, activation="softmax", name="probabilities")(x)
    return keras.Model(image, out, name="mnist_cnn")


def build_torch(filters=(32, 64, 64), dense=64, classes=10):
    import torch
    from torch import nn

    class MnistCNN(nn.Module):
        """NCHW input; `logits` for training, `forward` returns probabilities (the deployed graph)."""

        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(1, filters[0], 3), nn.ReLU(), nn.MaxPool2d(2),
                nn.Conv2d(filters[0], filters[1], 3), nn.ReLU(), nn.MaxPool2d(2),
                nn.Conv2d(filters[1], filters[2], 3), nn.ReLU(), nn.Flatten())
            self.head = nn.Sequential(nn.Linear(filters[2] * 3 * 3, dense), nn.ReLU(), nn.Linear(dense, classes))

        def logits(self, image):
            return self.head(self.features(image))

        def forward(self, image):
            return torch.softmax(self.logits(image), dim=-1)

    return MnistCNN()


def prepare_data(raw, profile, seed):
    from edgeproof.train._taskdata import TaskData, subset

    def images(x):
        return (x.astype("float32") / 255.0)[..., None]

    x_train, y_train = subset({"image": raw["x_train"]}, raw["y_train"], profile.train_samples, seed)
    x_test, y_test = subset({"image": raw["x_test"]}, raw["y_test"], profile.test_samples, seed + 1)
    return TaskData({"image": images(x_train["image"])}, y_train.astype("int64"),
                    {"image": images(x_test["image"])}, y_test.astype("int64"),
                    preprocessing={"kind": "image", "scale": 1 / 255.0, "offset": 0.0, "layout": "NHWC",
                                   "size": [28, 28], "channels": 1, "labels": [str(i) for i in range(10)]},
                    source=raw["source"])


SPEC = register(ModelSpec(
    name="mnist_cnn",
    task=Task.CLASSIFICATION,
    dataset="mnist",
    description="Small CNN on 28x28 grey digits, pixels scaled to [0, 1]; outputs class probabilities.",
    inputs=(TensorSpec("image", (None, 28, 28, 1), "float32", Layout.NHWC, value_range=(0.0, 1.0)),),
    outputs=(TensorSpec("probabilities", (None, 10), "float32", Layout.NF),),
    torch_layout=Layout.NCHW,
    metric=Metric("accuracy", higher_is_better=True, unit="percentage points"),
    quality_bar=">= 98.5 % test accuracy",
    profiles={
        "fast": Profile(epochs=3, batch_size=64, train_samples=5000, test_samples=1000),
        "default": Profile(epochs=2, batch_size=128),
        "full": Profile(epochs=12, batch_size=128),
    },
    architecture={"filters": (32, 64, 64), "dense": 64, "classes": 10},
    builders={Framework.KERAS: build_keras, Framework.TORCH: build_torch},
    prepare_data=prepare_data,
    quality_check=lambda r: r["accuracy"] >= 98.5,
))
