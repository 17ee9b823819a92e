"""Training: fast profiles of all ten models, checkpoints, determinism, DDP. Generated from the registry."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from edgeproof import Framework, get_spec, model_names
from edgeproof.train import load_checkpoint, predictor_for, train

pytestmark = pytest.mark.stack

FRAMEWORKS = [f.value for f in Framework]


def untrained_score(name: str, framework: str, artifacts) -> float:
    """The metric of the same model with its initial weights, measured the same way."""
    from edgeproof.train import evaluate, find_judge
    from edgeproof.train._data import load_dataset

    spec = get_spec(name)
    module = __import__(f"edgeproof.train._{'keras' if framework == 'keras' else 'torch'}_trainer", fromlist=["x"])
    data = spec.prepare_data(load_dataset(spec.dataset), spec.profile("fast"), 0)
    net = spec.builder(framework)(**spec.architecture)
    return evaluate(spec, module.predictor(spec, net), data, find_judge(artifacts))[spec.metric.name]


@pytest.fixture(scope="module")
def trained(fast_trained):
    return fast_trained


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("name", model_names())
def test_fast_profile_beats_a_trivial_baseline(trained, name, framework):
    artifacts, results = trained
    result = results[name, framework]
    value = result.metric_value
    if name == "linreg":  # predicting the training mean
        assert value < 0.2 * result.evaluation["trivial_mse"]
    elif name == "mnist_cnn":  # the bar for the fast profile
        assert value > 90.0
    elif name == "imdb_lstm":  # balanced classes: chance is 50 %
        assert value > 60.0
    elif name == "mnist_gan":  # the untrained generator, judged by the same mnist_cnn
        assert value >= untrained_score(name, framework, artifacts) + 5.0
    elif name == "translator":  # per-token loss of a uniform guess is ln(V); BLEU of the untrained model
        assert result.history[-1]["val_loss"] < 0.6 * np.log(get_spec(name).architecture["tgt_vocab"])
        assert value > untrained_score(name, framework, artifacts) + 0.5
    else:
        pytest.fail(f"no baseline for {name}: add one here")


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("name", model_names())
def test_checkpoint_reloads_into_identical_outputs(trained, name, framework):
    artifacts, results = trained
    result = results[name, framework]
    saved = np.load(os.path.join(os.path.dirname(result.metrics_path), "probe_outputs.npy"))
    checkpoint = load_checkpoint(result.checkpoint)
    assert checkpoint.meta["architecture"] == json.loads(json.dumps(get_spec(name).architecture))
    out = predictor_for(checkpoint)(get_spec(name).probe_inputs())
    np.testing.assert_array_equal(out, saved)


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("name", model_names())
def test_training_writes_metrics_and_curve(trained, name, framework):
    _, results = trained
    result = results[name, framework]
    metrics = json.loads(open(result.metrics_path).read())
    assert metrics["history"][-1]["epoch"] == result.epochs and metrics["metric"] == get_spec(name).metric.name
    assert all(np.isfinite(v) for row in metrics["history"] for v in row.values())
    assert open(result.curve_path, "rb").read(8) == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("name", model_names())
def test_keras_and_torch_have_the_same_trainable_parameter_count(name):
    spec = get_spec(name)
    from edgeproof.train import _keras_trainer, _torch_trainer

    keras_model = spec.builder("keras")(**spec.architecture)
    torch_model = spec.builder("torch")(**spec.architecture)
    assert _keras_trainer.count_trainable(keras_model) == _torch_trainer.count_trainable(torch_model) > 0


def test_training_is_deterministic_on_cpu(tmp_path):
    first = train("linreg", "torch", "fast", artifacts=tmp_path / "a")
    second = train("linreg", "torch", "fast", artifacts=tmp_path / "b")
    assert first.history == second.history
    k1 = train("linreg", "keras", "fast", epochs=20, artifacts=tmp_path / "c")
    k2 = train("linreg", "keras", "fast", epochs=20, artifacts=tmp_path / "d")
    assert k1.history == k2.history


def _torchrun(nproc: int, artifacts, model: str, epochs: int) -> list[dict]:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           "-m", "edgeproof", "train", "--model", model, "--framework", "torch", "--profile", "fast",
           "--epochs", str(epochs), "--device", "cpu", "--artifacts", str(artifacts)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((artifacts / model / "torch" / "training" / "metrics.json").read_text())
    return metrics["history"]


def test_ddp_with_two_processes_follows_the_single_process_loss_curve(tmp_path):
    """Full-batch linreg: averaging the two halves' gradients is the full-batch gradient, so the
    2-process DDP loss curve must equal the 1-process one up to float summation order."""
    one = _torchrun(1, tmp_path / "one", "linreg", 100)
    two = _torchrun(2, tmp_path / "two", "linreg", 100)
    np.testing.assert_allclose([r["loss"] for r in two], [r["loss"] for r in one], rtol=1e-4)
    assert one[-1]["loss"] < 0.2 * one[0]["loss"]


def test_ddp_cnn_loss_decreases_like_single_process(tmp_path):
    one = [r["loss"] for r in _torchrun(1, tmp_path / "one", "mnist_cnn", 2)]
    two = [r["loss"] for r in _torchrun(2, tmp_path / "two", "mnist_cnn", 2)]
    assert one[1] < one[0] and two[1] < two[0]
    assert 0.5 < two[-1] / one[-1] < 2.0


def test_the_gan_needs_a_judge(tmp_path):
    with pytest.raises(ValueError, match="mnist_cnn"):
        train("mnist_gan", "torch", "fast", artifacts=tmp_path)
