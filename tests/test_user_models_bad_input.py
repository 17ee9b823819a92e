"""Bring your own model, bad input: a typed error from the Python API, one line and exit 2 from the CLI, and
nothing written (the broken factories live in tests/test_user_models.py, where `--torch` finds them)."""
from __future__ import annotations

import numpy as np
import pytest

from benchmarks._user_models import lppool_onnx, tiny_encoder, two_input_keras
from edgeproof import cli
from edgeproof.errors import CorruptModelError, FactoryError, ModelFileNotFoundError, ModelFormatError, SampleDataError

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("byom-bad")


# -- bad input: a typed error, one line from the CLI, exit 2, nothing written ----------------------------------------

@pytest.fixture
def bad(work, tmp_path):
    """Files for the bad-input cases, and the CLI run on them in an empty artifacts folder."""
    keras_file = work / "two_input.keras"
    if not keras_file.exists():
        two_input_keras(keras_file)
    onnx_file = work / "lppool.onnx"
    if not onnx_file.exists():
        lppool_onnx(onnx_file)
    (tmp_path / "truncated.onnx").write_bytes(onnx_file.read_bytes()[: onnx_file.stat().st_size // 2])
    (tmp_path / "truncated.keras").write_bytes(keras_file.read_bytes()[:2000])
    (tmp_path / "notes.onnx").write_text("this is not a model\n")
    np.savez(tmp_path / "image.npz", x=np.zeros((4, 3, 8, 8), np.float32))
    np.savez(tmp_path / "tokens.npz", input_ids=np.ones((4, 10), np.int64), attention_mask=np.ones((4, 10), np.int64))
    np.savez(tmp_path / "wrong_image.npz", image=np.zeros((4, 10, 10, 3), np.float32),
             features=np.zeros((4, 5), np.float32))
    np.savez(tmp_path / "missing_input.npz", image=np.zeros((4, 12, 12, 3), np.float32))
    artifacts = tmp_path / "artifacts"

    def run(capsys, *args):
        code = cli.main(["convert", *[str(a) for a in args], "--artifacts", str(artifacts)])
        err = capsys.readouterr().err.strip().splitlines()
        assert not artifacts.exists() or not any(artifacts.iterdir()), list(artifacts.rglob("*"))
        return code, err

    return tmp_path, keras_file, onnx_file, run


@pytest.mark.parametrize("case, expected", [
    ("missing model", "does not exist"),
    ("missing sample data", "sample data"),
    ("onnx given to --keras", "is an ONNX model, not a Keras model: pass it with --onnx"),
    ("keras given to --onnx", "is a Keras .keras archive, not an ONNX model: pass it with --keras"),
    ("text file as ONNX", "is a text file, not an ONNX model"),
    ("truncated ONNX", "truncated"),
    ("truncated .keras", "damaged"),
    ("sample shapes do not match", "'image' has shape [4, 10, 10, 3] (per example [10, 10, 3]); the model's input "
                                   "'image' takes [N, 12, 12, 3] float32"),
    ("sample data lacks an input", "missing ['features']"),
    ("factory raises", "checkpoint server unreachable"),
    ("factory module missing", "cannot import module 'no_such_module'"),
    ("factory returns no module", "returned a int, not a torch.nn.Module"),
    ("weights do not fit", "do not fit the module"),
    ("no sample data option", "needs --sample-data"),
])
def test_bad_input_is_one_clear_line_and_no_output(bad, capsys, case, expected):
    tmp, keras_file, onnx_file, run = bad
    args = {
        "missing model": ["--onnx", tmp / "nope.onnx", "--sample-data", tmp / "image.npz"],
        "missing sample data": ["--onnx", onnx_file, "--sample-data", tmp / "nope.npz"],
        "onnx given to --keras": ["--keras", onnx_file, "--sample-data", tmp / "image.npz"],
        "keras given to --onnx": ["--onnx", keras_file, "--sample-data", tmp / "image.npz"],
        "text file as ONNX": ["--onnx", tmp / "notes.onnx", "--sample-data", tmp / "image.npz"],
        "truncated ONNX": ["--onnx", tmp / "truncated.onnx", "--sample-data", tmp / "image.npz"],
        "truncated .keras": ["--keras", tmp / "truncated.keras", "--sample-data", tmp / "image.npz"],
        "sample shapes do not match": ["--keras", keras_file, "--sample-data", tmp / "wrong_image.npz"],
        "sample data lacks an input": ["--keras", keras_file, "--sample-data", tmp / "missing_input.npz"],
        "factory raises": ["--torch", "tests.test_user_models:failing_factory", "--sample-data", tmp / "tokens.npz"],
        "factory module missing": ["--torch", "no_such_module:build", "--sample-data", tmp / "tokens.npz"],
        "factory returns no module": ["--torch", "tests.test_user_models:not_a_module", "--sample-data", tmp / "tokens.npz"],
        "weights do not fit": ["--torch", "tests.test_user_models:resnet_block", "--weights", _wrong_weights(tmp),
                               "--sample-data", tmp / "image.npz"],
        "no sample data option": ["--onnx", onnx_file],
    }[case]
    code, err = run(capsys, *args)
    assert code == 2
    assert len(err) == 1 and err[0].startswith("edgeproof convert: error: "), err
    assert expected in err[0], err[0]


def _wrong_weights(tmp):
    import torch

    torch.save(tiny_encoder().state_dict(), tmp / "encoder_weights.pt")
    return tmp / "encoder_weights.pt"


def test_typed_errors_from_the_python_api(bad):
    from edgeproof.pipeline import convert_user_model

    tmp, keras_file, onnx_file, _ = bad
    cases = [
        (ModelFileNotFoundError, dict(model=tmp / "nope.onnx", sample_data=tmp / "image.npz")),
        (ModelFormatError, dict(model=keras_file, kind="onnx", sample_data=tmp / "image.npz")),
        (CorruptModelError, dict(model=tmp / "truncated.onnx", sample_data=tmp / "image.npz")),
        (SampleDataError, dict(model=keras_file, sample_data=tmp / "wrong_image.npz")),
        (FactoryError, dict(model="tests.test_user_models:failing_factory", sample_data=tmp / "tokens.npz")),
    ]
    for error, kwargs in cases:
        with pytest.raises(error):
            convert_user_model(artifacts=tmp / "artifacts", progress=False, **kwargs)
    assert not (tmp / "artifacts").exists()


def test_input_shape_and_layout_overrides_and_metric_choice():
    from edgeproof._spec import Layout
    from edgeproof.convert._sample_data import SampleData
    from edgeproof.convert._user_inputs import Declared, choose_metric, parse_input_shapes, parse_layouts, resolve_inputs
    from edgeproof.errors import UserModelError

    declared = [Declared("pixels", "pixels", (None, None, None, 3), "float32")]  # open H and W
    sample = SampleData({"pixels": np.zeros((2, 20, 24, 3), np.float64)}, None, "s.npz")
    specs, arrays, _ = resolve_inputs(declared, sample, "onnx", parse_input_shapes(["pixels=N,20,24,3"]),
                                      parse_layouts(["NHWC"]))
    assert specs[0].shape == (None, 20, 24, 3) and specs[0].layout is Layout.NHWC
    assert arrays["pixels"].dtype == np.float32  # cast to the model's dtype
    with pytest.raises(UserModelError, match="contradicts"):
        resolve_inputs([Declared("a", "a", (None, 3), "float32")], SampleData({"a": np.zeros((2, 3))}, None, "s"),
                       "onnx", parse_input_shapes(["N,4"]), {})
    with pytest.raises(SampleDataError, match="integer ids"):
        resolve_inputs([Declared("ids", "ids", (None, 4), "int64")], SampleData({"ids": np.full((2, 4), 0.5)}, None, "s"),
                       "torch", {}, {})
    scores = np.eye(3, dtype=np.float32)[[0, 1, 2, 1]]
    assert choose_metric(None, np.array([0, 1, 2, 1]), scores)[0] == "accuracy"
    assert choose_metric(None, np.array([0.5, 1.5, 2.0, 0.1], np.float32), scores[:, :1])[0] == "mse"
    assert choose_metric(None, None, scores)[0] == "none"
    with pytest.raises(SampleDataError, match="needs labels"):
        choose_metric("accuracy", None, scores)
