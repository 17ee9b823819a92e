"""MNIST GAN: generator 100 -> 256 -> 512 -> 784 tanh (BatchNorm, LeakyReLU 0.2). Only the generator ships."""
from edgeproof._registry import register
from edgeproof._spec import Distribution, Layout, Metric, ModelSpec, Profile, Task, TensorSpec

SPEC = register(ModelSpec(
    name="mnist_gan",
    task=Task.GENERATION,
    dataset="mnist",
    description="Fully connected GAN on MNIST scaled to [-1, 1]; the deployed model is the generator.",
    inputs=(TensorSpec("z", (None, 100), "float32", Layout.NF, Distribution.NORMAL),),
    outputs=(TensorSpec("image", (None, 784), "float32", Layout.NF, value_range=(-1.0, 1.0)),),
    metric=Metric("confident_fraction", higher_is_better=True, unit="percentage points"),
    quality_bar="mnist_cnn classifies >= 80 % of samples with confidence >= 0.9, all 10 digits present",
    profiles={
        "fast": Profile(epochs=1, batch_size=64, train_samples=4000, learning_rate=2e-4),
        "default": Profile(epochs=5, batch_size=128, learning_rate=2e-4),
        "full": Profile(epochs=50, batch_size=128, learning_rate=2e-4),
    },
    architecture={"latent_dim": 100, "generator_hidden": (256, 512), "discriminator_hidden": (512, 256), "image_size": 784},
))
