"""Linear regression on synthetic data: y = 2.5x + 5 + N(0, 2^2), one Dense/Linear unit."""
from edgeproof._quant import QuantMode
from edgeproof._registry import register
from edgeproof._spec import (DEFAULT_BUDGETS, Framework, Layout, Metric, ModelSpec, ParityBudget, Profile, Task,
                             TensorSpec)


def build_keras(units=1):
    from edgeproof._frameworks import import_tf_keras

    keras = import_tf_keras()
    x = keras.Input((1,), name="x")
    return keras.Model(x, keras.layers.Dense(units, name="y")(x), name="linreg")


def build_torch(units=1):
    from torch import nn

    class LinReg(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(1, units)

        def forward(self, x):
            return self.linear(x)

    return LinReg()


def prepare_data(raw, profile, seed):
    from edgeproof.train._taskdata import TaskData

    return TaskData({"x": raw["x_train"]}, raw["y_train"], {"x": raw["x_test"]}, raw["y_test"],
                    preprocessing={"kind": "features"}, source=raw["source"])


SPEC = register(ModelSpec(
    name="linreg",
    task=Task.REGRESSION,
    dataset="synthetic_linear",
    description="One Dense/Linear unit fitted by SGD (lr 0.01) to 100 noisy points of y = 2.5x + 5.",
    inputs=(TensorSpec("x", (None, 1), "float32", Layout.NF, value_range=(0.0, 10.0)),),
    outputs=(TensorSpec("y", (None, 1), "float32", Layout.NF, value_range=(0.0, 35.0)),),
    metric=Metric("mse", higher_is_better=False, unit="squared units of y"),
    quality_bar="w and b within 0.05 of the closed-form least-squares fit",
    profiles={
        "fast": Profile(epochs=300, batch_size=100, learning_rate=0.01),
        "default": Profile(epochs=2000, batch_size=100, learning_rate=0.01),
        "full": Profile(epochs=5000, batch_size=100, learning_rate=0.01),
    },
    budgets={
        **DEFAULT_BUDGETS,
        # Outputs reach ~30, so absolute errors scale with them: fp16 keeps 11 mantissa bits
        # (~0.015 at 30), int8 output steps are ~35/255. Metric drops are MSE increases.
        QuantMode.FP32: ParityBudget(max_abs_error=1e-4, min_cosine=0.99999, max_metric_drop=1e-3),
        QuantMode.FP16: ParityBudget(max_abs_error=5e-2, min_cosine=0.9999, max_metric_drop=0.02),
        QuantMode.DYNAMIC: ParityBudget(max_abs_error=2e-1, min_cosine=0.999, max_metric_drop=0.1),
        QuantMode.INT8: ParityBudget(max_abs_error=3e-1, min_cosine=0.999, max_metric_drop=0.2),
        QuantMode.UINT8: ParityBudget(max_abs_error=2e-1, min_cosine=0.999, max_metric_drop=0.1),
    },
    architecture={"units": 1},
    builders={Framework.KERAS: build_keras, Framework.TORCH: build_torch},
    prepare_data=prepare_data,
    quality_check=lambda r: r["weight_error"] <= 0.05 and r["bias_error"] <= 0.05,
))
