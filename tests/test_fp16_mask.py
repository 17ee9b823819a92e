"""The translator's additive attention mask stays finite in half precision (train/models/translator.py,
MASK_VALUE = -1e4, used by both builders' Attention: `scores + (1 - keep) * MASK_VALUE`).

History: with -1e9 the fp16 artifacts stored the constant as -inf (float16's largest finite value is 65504), and
`0 * -inf` made every UNMASKED score NaN: the TF.js fp16 translator decoded BLEU 0 (caught by edgeproof verify).
The unit tests check the arithmetic on the real constant; the stack test checks the real fp16 artifacts."""
from __future__ import annotations

import json

import numpy as np
import pytest

from edgeproof.train.models import translator

FP16_MAX = float(np.finfo(np.float16).max)  # 65504


def _masked_softmax(scores: np.ndarray, keep: np.ndarray, mask_value) -> np.ndarray:
    """The Attention layers' formula, with the constant as an fp16 artifact stores it (float16, read back into
    float32 arithmetic: TFLite dequantizes fp16 weights to float32, TF.js decodes float16 shards to float32)."""
    with np.errstate(invalid="ignore", over="ignore"):  # -1e9 overflows float16 on purpose in one test
        constant = np.float32(np.float16(mask_value))
        z = scores.astype(np.float32) + (np.float32(1) - keep.astype(np.float32)) * constant
        z = z - z.max(-1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(-1, keepdims=True)


def test_the_mask_constant_is_finite_in_float16():
    assert translator.MASK_VALUE == -1e4
    assert abs(translator.MASK_VALUE) < FP16_MAX
    assert np.isfinite(np.float16(translator.MASK_VALUE)) and float(np.float16(translator.MASK_VALUE)) == -1e4
    with np.errstate(over="ignore"):
        assert np.isneginf(np.float16(-1e9))  # what the old constant became


def test_the_fp16_mask_hides_padding_and_keeps_the_rest_exact():
    rng = np.random.default_rng(0)
    scores = rng.normal(0, 3, size=(4, 6)).astype(np.float32)  # attention logits of a trained model are O(1-10)
    keep = np.array([1, 1, 1, 1, 0, 0], np.float32)  # the last two source positions are padding
    weights = _masked_softmax(scores, keep, translator.MASK_VALUE)
    assert np.isfinite(weights).all()
    # exp(-1e4 + O(10)) underflows to exactly 0 in float32 (its smallest subnormal is ~1.4e-45 = exp(-103))
    assert (weights[:, 4:] == 0).all()
    # and the kept positions get the softmax over the kept scores alone, to float32 rounding (1e-6 > a few ulps of 1)
    alone = np.exp(scores[:, :4] - scores[:, :4].max(-1, keepdims=True))
    np.testing.assert_allclose(weights[:, :4], alone / alone.sum(-1, keepdims=True), rtol=1e-6, atol=1e-7)


def test_the_old_constant_would_make_every_score_nan():
    """The regression the constant guards against, reproduced: the test above fails for -1e9."""
    keep = np.array([1, 1, 0], np.float32)
    weights = _masked_softmax(np.zeros((1, 3), np.float32), keep, -1e9)
    assert np.isnan(weights).all()


def test_the_builders_use_the_constant_not_a_literal():
    """Both frameworks' Attention read MASK_VALUE from the module (a literal -1e9 slipped back into one builder
    would bypass the tests above)."""
    import inspect
    import re

    source = inspect.getsource(translator)
    assert source.count("* MASK_VALUE") == 2  # build_keras's Attention.call and build_torch's Attention.forward
    assert re.findall(r"^[^#\n]*1e9", source, re.M) == []  # 1e9 only in comments


@pytest.mark.stack
@pytest.mark.parametrize("framework", ["keras", "torch"])
def test_the_fp16_translator_artifacts_hold_only_finite_constants(fast_converted, framework):
    """Every float constant of the fp16 translator, as each artifact stores it: the TF.js fp16 weight shards
    (float16 values) and the .tflite's float16 tensors. One -inf (the old -1e9 mask) makes the artifact decode NaN."""
    from edgeproof.runtime import load_interpreter
    from edgeproof.train import model_dir

    artifacts, records = fast_converted
    root = model_dir(artifacts, "translator", framework)
    by_key = {r.key: r for r in records["translator", framework]}
    assert by_key["tfjs/fp16"].status == "ok" and by_key["tflite/fp16"].status == "ok"

    folder = (root / by_key["tfjs/fp16"].path).parent
    halves = []
    for group in json.loads((folder / "model.json").read_text())["weightsManifest"]:
        data = b"".join((folder / p).read_bytes() for p in group["paths"])
        offset = 0
        for w in group["weights"]:
            stored = (w.get("quantization") or {}).get("dtype", w["dtype"])
            itemsize = {"float16": 2, "float32": 4, "int32": 4, "uint8": 1, "uint16": 2, "bool": 1}[stored]
            count = int(np.prod(w["shape"])) if w["shape"] else 1
            chunk = data[offset:offset + count * itemsize]
            offset += count * itemsize
            if stored == "float16":
                halves.append(np.frombuffer(chunk, np.float16))
    assert halves, "the TF.js fp16 model stores no float16 weights: not an fp16 conversion"
    tfjs_values = np.concatenate(halves)
    assert np.isfinite(tfjs_values).all(), f"{(~np.isfinite(tfjs_values)).sum()} non-finite float16 weights"

    _, interp = load_interpreter(str(root / by_key["tflite/fp16"].path))
    fp16 = [d for d in interp.get_tensor_details() if d["dtype"] == np.float16]
    assert fp16, "the fp16 .tflite holds no float16 tensors: not an fp16 conversion"
    for d in fp16:
        assert np.isfinite(interp.get_tensor(d["index"])).all(), d["name"]
