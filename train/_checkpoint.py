"""Checkpoints: weights + the constructor arguments + the preprocessing, enough to rebuild the
model with the builder from its model file alone (no training code). Written atomically."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeproof._atomic import replacing_dir
from edgeproof._registry import get_spec
from edgeproof._spec import Framework, ModelSpec, Task
from edgeproof.errors import EdgeproofError

FORMAT_VERSION = 1
META = "checkpoint.json"


class CheckpointError(EdgeproofError):
    pass


@dataclass
class Checkpoint:
    spec: ModelSpec
    framework: Framework
    model: Any  # a Keras model / torch module, or (generator, discriminator) for the GAN
    meta: dict[str, Any]

    @property
    def preprocessing(self) -> dict[str, Any]:
        return self.meta["preprocessing"]


def _weight_files(spec: ModelSpec, framework: Framework) -> list[str]:
    names = ["generator", "discriminator"] if spec.task is Task.GENERATION else ["model"]
    ext = ".weights.h5" if framework is Framework.KERAS else ".pt"
    return [n + ext for n in names]


def save_checkpoint(directory: Path, spec: ModelSpec, framework: Framework | str, model, architecture: dict,
                    preprocessing: dict, extra: dict | None = None) -> Path:
    """Write `directory` atomically: weights file(s) + checkpoint.json."""
    framework = Framework(framework)
    directory = Path(directory)
    with replacing_dir(directory) as tmp:
        models = model if isinstance(model, tuple) else (model,)
        files = _weight_files(spec, framework)
        for net, name in zip(models, files):
            if framework is Framework.KERAS:
                net.save_weights(str(tmp / name))
            else:
                import torch

                torch.save(net.state_dict(), tmp / name)
        meta = {"format_version": FORMAT_VERSION, "model": spec.name, "framework": framework.value,
                "architecture": architecture, "preprocessing": preprocessing, "weights": files, **(extra or {})}
        (tmp / META).write_text(json.dumps(meta, indent=2))
    return directory


def load_checkpoint(directory: Path | str) -> Checkpoint:
    """Rebuild the model from checkpoint.json with its model file's builder and load the weights."""
    directory = Path(directory)
    meta_path = directory / META
    if not meta_path.exists():
        raise CheckpointError(f"{directory} is not a checkpoint ({META} is missing); "
                              f"train one with `edgeproof train --model NAME --framework keras|torch`")
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{meta_path} is not valid JSON ({err}); re-run `edgeproof train`") from None
    spec = get_spec(meta["model"])
    framework = Framework(meta["framework"])
    built = spec.builder(framework)(**meta["architecture"])
    models = built if isinstance(built, tuple) else (built,)
    for net, name in zip(models, meta["weights"]):
        path = directory / name
        if not path.exists():
            raise CheckpointError(f"{path} is missing from the checkpoint; re-run `edgeproof train`")
        try:
            if framework is Framework.KERAS:
                net.load_weights(str(path))
            else:
                import torch

                net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
                net.eval()
        except Exception as err:  # corrupt or mismatched weights: say which file and what to do
            raise CheckpointError(f"cannot load {path}: {err}. The file is corrupt or from another "
                                  f"architecture; re-run `edgeproof train --model {spec.name} --framework {framework.value}`") from None
    return Checkpoint(spec, framework, built, meta)
