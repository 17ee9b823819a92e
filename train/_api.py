"""`train()`: the Python API behind `edgeproof train`."""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional

from edgeproof import _log
from edgeproof._registry import get_spec
from edgeproof._spec import Framework, ModelSpec, Task

from ._checkpoint import load_checkpoint, save_checkpoint
from ._evaluate import Predict, evaluate


@dataclass
class TrainResult:
    model: str
    framework: str
    profile: str
    epochs: int
    checkpoint: str
    metrics_path: str
    curve_path: str
    evaluation: dict[str, Any]
    metric: str
    metric_value: float
    quality_bar: str
    quality_bar_met: bool
    trainable_params: int
    wall_time_s: float
    train_samples: int
    test_samples: int
    data_source: str
    history: list[dict] = field(repr=False, default_factory=list)


def model_dir(artifacts: Path | str, model: str, framework: Framework | str) -> Path:
    return Path(artifacts) / model / Framework(framework).value


def predictor_for(checkpoint) -> Predict:
    """A numpy predict function for a loaded checkpoint, whatever its framework."""
    if checkpoint.framework is Framework.KERAS:
        from ._keras_trainer import predictor
    else:
        from ._torch_trainer import predictor
    return predictor(checkpoint.spec, checkpoint.model)


def find_judge(artifacts: Path | str) -> Optional[Predict]:
    """The project's own mnist_cnn (Keras first, then PyTorch) from `artifacts`, for judging the GAN."""
    for framework in Framework:
        ckpt = model_dir(artifacts, "mnist_cnn", framework) / "checkpoint"
        if (ckpt / "checkpoint.json").exists():
            return predictor_for(load_checkpoint(ckpt))
    return None


def train(model: str, framework: Framework | str, profile: str = "default", *, epochs: Optional[int] = None,
          device: str = "auto", data_dir: Optional[str] = None, artifacts: Path | str = "artifacts",
          mixed_precision: bool = False, seed: int = 0, judge: Optional[Predict] = None) -> TrainResult:
    """Train one reference model; write checkpoint/, training/metrics.json and training/curve.png
    under artifacts/<model>/<framework>/. The GAN is judged by the mnist_cnn found in `artifacts`."""
    from ._data import load_dataset

    spec: ModelSpec = get_spec(model)
    framework = Framework(framework)
    prof = spec.profile(profile)
    epochs = epochs or prof.epochs
    if epochs < 1:
        raise ValueError("--epochs must be at least 1")
    if spec.task is Task.GENERATION and judge is None:
        judge = find_judge(artifacts)
        if judge is None:
            raise ValueError(f"the GAN is judged by the project's own mnist_cnn, and none is in {artifacts}: "
                             f"run `edgeproof train --model mnist_cnn --framework keras` first")
    raw = load_dataset(spec.dataset, data_dir=data_dir)
    data = spec.prepare_data(raw, prof, seed)
    _log.detail(f"training {spec.name} ({framework.value}, profile {profile}, {epochs} epochs) on "
          f"{data.n_train} examples from {data.source}", flush=True)

    trainer, net, history, is_main, wall = _fit(spec, framework, data, prof, epochs, device, mixed_precision, seed)

    out = model_dir(artifacts, spec.name, framework)
    predict = trainer.predictor(spec, net)
    evaluation = evaluate(spec, predict, data, judge) if is_main else {}
    metric_value = float(evaluation.get(spec.metric.name, float("nan")))
    met = bool(spec.quality_check(evaluation)) if is_main and spec.quality_check else False
    result = TrainResult(
        model=spec.name, framework=framework.value, profile=profile, epochs=epochs,
        checkpoint=str(out / "checkpoint"), metrics_path=str(out / "training" / "metrics.json"),
        curve_path=str(out / "training" / "curve.png"), evaluation=evaluation, metric=spec.metric.name,
        metric_value=metric_value, quality_bar=spec.quality_bar, quality_bar_met=met,
        trainable_params=trainer.count_trainable(net), wall_time_s=round(wall, 2), train_samples=data.n_train,
        test_samples=data.n_test, data_source=data.source, history=history)
    if not is_main:
        return result
    _save(out, spec, framework, net, data, result, predict,
          extra={"profile": profile, "epochs": epochs, "seed": seed, "evaluation": evaluation})
    _log.info(f"{spec.name} ({framework.value}): {spec.metric.name} {metric_value:.4g} on {data.n_test} test examples; "
          f"quality bar ({spec.quality_bar}): {'met' if met else 'not met'}; {wall:.1f} s; "
          f"checkpoint {result.checkpoint}", flush=True)
    return result


def _fit(spec: ModelSpec, framework: Framework, data, prof, epochs: int, device: str, mixed_precision: bool,
         seed: int):
    """Build and train the network in `framework`: (trainer module, net, history, is_main, wall seconds)."""
    architecture = dict(spec.architecture)
    start = time.perf_counter()
    if framework is Framework.KERAS:
        from . import _keras_trainer as trainer

        strategy = trainer.setup_device(device, mixed_precision, seed)
        net = trainer.build(spec, strategy, architecture)
        history = trainer.fit(spec, net, data, prof, epochs, strategy)
        is_main = True
    else:
        from . import _torch_trainer as trainer

        dist_info = trainer.setup_device(device, mixed_precision, seed)
        net = spec.builder(framework)(**architecture)
        history = trainer.fit(spec, net, data, prof, epochs, dist_info, mixed_precision=mixed_precision)
        is_main = dist_info.main
    return trainer, net, history, is_main, time.perf_counter() - start


def _save(out: Path, spec: ModelSpec, framework: Framework, net, data, result: TrainResult, predict,
          extra: dict) -> None:
    """The checkpoint, training/metrics.json, the probe outputs and the curve."""
    import numpy as np

    from ._plots import training_curve

    save_checkpoint(out / "checkpoint", spec, framework, net, dict(spec.architecture), data.preprocessing,
                    extra=extra)
    (out / "training").mkdir(parents=True, exist_ok=True)
    Path(result.metrics_path).write_text(json.dumps(asdict(result), indent=2))
    # The trained model's outputs on the spec's fixed probes: a reloaded checkpoint must reproduce them.
    np.save(out / "training" / "probe_outputs.npy", predict(spec.probe_inputs()))
    training_curve(result.history, Path(result.curve_path), f"{spec.name} ({framework.value}, {result.profile})")
