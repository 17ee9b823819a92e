"""`Model.load(bundle)`: a deployed bundle as a callable on raw inputs (image, text, seed, numbers).

numpy and one TFLite interpreter only. The bundle's manifest says everything: tensor names, shapes,
dtypes, layouts, int8 scale/zero-point, and the preprocessing (scaling, vocabularies, labels).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np

from ._decode import greedy_decode
from ._manifest import BundleError, load_manifest, safe_member
from ._preprocessing import load_preprocessing
from ._signature import InputError
from ._tflite_runner import TFLiteRunner

RawInput = Union[str, Sequence[str], int, np.ndarray]
MAX_SEED = 2**64


def _short(value: Any, limit: int = 40) -> str:
    """A value for an error message: huge numbers shortened (10**4000 has 4001 digits)."""
    if isinstance(value, (int, np.integer)) and abs(int(value)) >= 10**limit:
        return f"a number of about {int(abs(int(value)).bit_length() * 0.30103) + 1} digits"
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


class Model:
    """A verified bundle, loaded: `model(raw)` preprocesses, runs and postprocesses."""

    def __init__(self, bundle: Path, manifest: dict[str, Any], preprocessing: dict[str, Any], runner: TFLiteRunner):
        self.bundle, self.manifest, self.preprocessing, self.runner = bundle, manifest, preprocessing, runner
        self.task: str = manifest["task"]
        self.labels: Optional[list[str]] = manifest.get("labels")
        self._tokenizers: dict[str, Any] = {}
        self.self_test_result = None  # a SelfTestResult once Model.load(..., self_test=True) ran it
        self.signature_check: Optional[dict[str, Any]] = None  # set when loaded with a public key

    @classmethod
    def load(cls, bundle: Path | str, interpreter: Optional[str] = None, num_threads: Optional[int] = None,
             self_test: bool = False, public_key: Optional[Path | str] = None) -> "Model":
        """Check the manifest and every file's sha256, then load the .tflite in the chosen interpreter.

        `public_key`: first verify the bundle's OpenSSF model-signing signature (every file, the manifest
        included); an unsigned or altered bundle is refused. `self_test=True`: run the bundle's golden
        probes and refuse a model that does not reproduce the deploy gate's outputs (SelfTestError);
        the result is kept in `model.self_test_result`.
        """
        bundle = Path(bundle)
        signature = None
        if public_key is not None:
            from ._bundle_signing import verify_bundle_signature

            signature = verify_bundle_signature(bundle, public_key)
        manifest = load_manifest(bundle)
        if manifest.get("artifact_target", "tflite") != "tflite":
            raise BundleError(f"{bundle} holds a {manifest.get('artifact_target')!r:.40} model; the edge runtime runs "
                              f"TFLite bundles (`edgeproof deploy --target pi` or `--target android`)")
        preprocessing = load_preprocessing(bundle, manifest)
        runner = TFLiteRunner(safe_member(bundle, manifest["model_file"]),
                              [(t["name"], t.get("canonical_layout", t["layout"])) for t in manifest["inputs"]],
                              [(t["name"], t.get("canonical_layout", t["layout"])) for t in manifest["outputs"]],
                              [{**t, "name": t["tensor"]} for t in manifest["inputs"]],
                              [{**t, "name": t["tensor"]} for t in manifest["outputs"]],
                              interpreter=interpreter, num_threads=num_threads)
        model = cls(bundle, manifest, preprocessing, runner)
        model.signature_check = signature
        if self_test:
            from ._selftest import require_self_test

            model.self_test_result = require_self_test(model)
        return model

    @property
    def interpreter(self) -> str:
        return self.runner.interpreter_name

    def signature(self) -> str:
        return ", ".join(b.describe() for b in self.runner.inputs)

    # -- tensors in, tensors out ------------------------------------------------------------------
    def predict(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        """Canonical model inputs (after preprocessing) -> the model's output, as float32."""
        return self.predict_all(inputs)[self.manifest["outputs"][0]["name"]]

    def predict_all(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Canonical model inputs -> every output by name, as float32 (integer outputs stay integers).
        NaN or infinite inputs are an InputError (their outputs would be meaningless)."""
        for name, value in inputs.items():
            array = np.asarray(value)
            if array.dtype.kind in "fc" and not np.isfinite(array).all():
                raise InputError(f"input {name!r} holds NaN or infinite values; give finite numbers")
        return self.runner(inputs)

    # -- raw inputs ---------------------------------------------------------------------------------
    def __call__(self, raw: RawInput) -> dict[str, Any]:
        handler = {"classification": self._classify_image, "binary_classification": self._classify_text,
                   "generation": self._generate, "translation": self._translate,
                   "regression": self._regress, "custom": self._custom}[self.task]
        return handler(raw)

    def _custom(self, raw) -> dict[str, np.ndarray]:
        """A user's own model: raw tensors in (a dict by input name, or one array for a single input),
        the raw output dict back. int64 ids are cast to the artifact's int32 (range-checked)."""
        names = [t["name"] for t in self.manifest["inputs"]]
        if isinstance(raw, dict):
            inputs = {k: np.asarray(v) for k, v in raw.items()}
        elif len(names) == 1:
            inputs = {names[0]: np.asarray(raw)}
        else:
            raise InputError(f"this model takes {len(names)} inputs: pass a dict {{name: array}} with {names}")
        unknown = sorted(set(inputs) - set(names))
        if unknown:
            raise InputError(f"unknown inputs {unknown}; the model takes {self.signature()}")
        return self.predict_all(inputs)

    def _tokenizer(self, key: str):
        if key not in self._tokenizers:
            from edgeproof._tokenizers import tokenizer_from_dict

            try:
                self._tokenizers[key] = tokenizer_from_dict(self.preprocessing.get(key))
            except (KeyError, TypeError, ValueError, AttributeError) as err:
                raise BundleError(f"{self.bundle}: preprocessing field {key!r} is not a valid tokenizer "
                                  f"({type(err).__name__}: {str(err)[:80]}); rebuild the bundle") from None
        return self._tokenizers[key]

    def image_tensor(self, raw: np.ndarray) -> np.ndarray:
        """Grey images (H, W), (H, W, 1), (N, H, W) or (N, H, W, 1): integers are 0-255 pixels and are
        scaled as in training; floats are taken as already scaled."""
        pre = self.preprocessing
        h, w = pre.get("size", [28, 28])
        array = np.asarray(raw)
        if array.ndim == 2:
            array = array[None]
        if array.ndim == 4 and array.shape[-1] == pre.get("channels", 1):
            array = array[..., 0]
        if array.ndim != 3 or array.shape[1:] != (h, w):
            raise InputError(f"expected a {h}x{w} grey image (or a batch of them), got an array of shape "
                             f"{list(np.asarray(raw).shape)}; the model takes {self.signature()}")
        if np.issubdtype(array.dtype, np.integer):
            array = array.astype(np.float32) * float(pre.get("scale", 1.0)) + float(pre.get("offset", 0.0))
        elif not np.issubdtype(array.dtype, np.floating):
            raise InputError(f"image dtype {array.dtype} is neither integer pixels nor floats")
        return array.astype(np.float32)[..., None]

    def _classify_image(self, raw) -> dict[str, Any]:
        name = self.manifest["inputs"][0]["name"]
        probs = self.predict({name: self.image_tensor(raw)})
        classes = probs.argmax(-1)
        labels = self.labels or [str(i) for i in range(probs.shape[-1])]
        return {"probabilities": probs, "class": classes, "label": [labels[c] for c in classes]}

    @staticmethod
    def _texts(raw) -> list[str]:
        texts = [raw] if isinstance(raw, str) else list(raw)
        if not texts or not all(isinstance(t, str) for t in texts):
            raise InputError("expected text (a string or a list of strings)")
        for t in texts:
            if not t.strip():
                raise InputError("the text is empty: type a sentence")
        return texts

    def _classify_text(self, raw) -> dict[str, Any]:
        tokenizer = self._tokenizer("tokenizer")
        try:
            ids = tokenizer.encode_batch(self._texts(raw))
        except ValueError as err:
            raise InputError(str(err)) from None
        p = self.predict({self.manifest["inputs"][0]["name"]: ids})[:, 0]
        labels = self.labels or ["negative", "positive"]
        return {"positive": p, "label": [labels[int(v > 0.5)] for v in p], "token_ids": ids}

    def latent(self, raw, count: int = 16) -> np.ndarray:
        """A seed (int) -> `count` N(0, 1) latent vectors; or the latent vectors themselves."""
        dim = int(self.preprocessing.get("latent_dim", self.manifest["inputs"][0]["shape"][-1]))
        if isinstance(raw, (int, np.integer)) and not isinstance(raw, bool):
            if not 0 <= int(raw) < MAX_SEED:
                raise InputError(f"the seed must be an integer from 0 to 2**64 - 1, got {_short(raw)}")
            return np.random.default_rng(int(raw)).standard_normal((count, dim)).astype(np.float32)
        z = np.asarray(raw, dtype=np.float32)
        if z.ndim == 1:
            z = z[None]
        if z.ndim != 2 or z.shape[1] != dim:
            raise InputError(f"expected an integer seed or latent vectors of shape (N, {dim}), got {list(z.shape)}")
        return z

    def _generate(self, raw) -> dict[str, Any]:
        pre = self.preprocessing
        out = self.predict({self.manifest["inputs"][0]["name"]: self.latent(raw)})
        shape = pre.get("output_shape", [28, 28])
        pixels = np.clip(out * pre.get("output_scale", 127.5) + pre.get("output_offset", 127.5), 0, 255)
        return {"images": np.round(pixels).astype(np.uint8).reshape((-1, *shape)), "raw": out}

    def _translate(self, raw) -> dict[str, Any]:
        pre = self.preprocessing
        source, target = self._tokenizer("source_tokenizer"), self._tokenizer("target_tokenizer")
        try:
            ids = source.encode_batch(self._texts(raw), max_len=pre["max_len"], bos=False, eos=True)
        except ValueError as err:
            raise InputError(str(err)) from None
        generated = greedy_decode(self.predict, ids, pre["bos"], pre["eos"])
        return {"translation": [target.decode(row) for row in generated], "token_ids": generated}

    def _regress(self, raw) -> dict[str, Any]:
        spec = self.manifest["inputs"][0]
        x = np.asarray(raw, dtype=np.float32)
        features = spec["shape"][-1]
        if x.ndim == 0 or (x.ndim == 1 and features == 1):
            x = x.reshape(-1, 1)
        if x.ndim != 2 or x.shape[1] != features:
            raise InputError(f"expected numbers of shape (N, {features}), got {list(np.asarray(raw).shape)}")
        return {"y": self.predict({spec["name"]: x})[:, 0]}
