"""MNIST classifier: Conv32-Pool-Conv64-Pool-Conv64-Flatten-Dense64-Dense10 (softmax in the deployed graph)."""
from edgeproof._registry import register
from edgeproof._spec import Layout, Metric, ModelSpec, Profile, Task, TensorSpec

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
        "fast": Profile(epochs=2, batch_size=64, train_samples=4000, test_samples=1000),
        "default": Profile(epochs=2, batch_size=128),
        "full": Profile(epochs=12, batch_size=128),
    },
    architecture={"filters": (32, 64, 64), "dense": 64, "classes": 10},
))
