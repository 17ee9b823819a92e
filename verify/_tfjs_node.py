"""Run TF.js graph models under Node from Python (stdlib + numpy only), for parity verification.

`TfjsNodeRunner` drives one long-lived `node verify/_tfjs_runner.mjs` process over JSON lines:
load a model.json from disk, predict, greedy-decode a translator, time inference. TF.js comes from the
node_modules folder edgeproof._js.js_modules() finds (the checkout's web_demo/node_modules, else a user cache
installed by `npm ci` from the shipped lock), passed to the runner as $EDGEPROOF_NODE_MODULES.
"""
from __future__ import annotations

import base64
import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import IO, Any, Optional

import numpy as np

from edgeproof._js import NODE_FIX, JsDepsError, js_modules
from edgeproof.errors import EdgeproofError

RUNNER = Path(__file__).with_name("_tfjs_runner.mjs")
SETUP_HINT = "run `scripts/setup.sh web` to install TF.js into web_demo/node_modules"
_WIRE = {"float32": np.dtype("<f4"), "int32": np.dtype("<i4"), "bool": np.dtype("u1")}
_INT32 = np.iinfo(np.int32)


class TfjsRuntimeError(EdgeproofError):
    """TF.js under Node failed: the runner reported an error, died, or cannot start."""


class TfjsModelError(TfjsRuntimeError, ValueError):
    """A model.json (or its weight shards) that is refused before Node reads it: a weight path that
    is absolute, has '..', or resolves outside the model's folder; sizes over the limits or shards
    that do not hold the bytes the declared weight shapes need."""


# model.json holds the graph topology: ~30 KiB for the CNN, ~1 MiB for the translator. Weights: the
# largest reference model (translator fp32) has ~40 MB. Both limits are far above, and bounded.
MAX_MODEL_JSON_BYTES = 64 * 2**20
MAX_WEIGHT_BYTES = 2 * 2**30
# Bytes per element of TF.js weight dtypes (tfjs-core io.DTYPE_VALUE_SIZE_MAP) and of the
# quantization dtypes the converter writes (float16, uint8, uint16). Strings are variable-size.
_WEIGHT_BYTES = {"float32": 4, "int32": 4, "bool": 1, "complex64": 8, "float16": 2, "uint8": 1, "uint16": 2}


def _weight_path(model_json: Path, folder: Path, entry: Any) -> Path:
    """A weightsManifest path as a file inside the model's folder (symlinks resolved), or refused."""
    if not isinstance(entry, str) or not entry or "\0" in entry or "\\" in entry or "://" in entry:
        raise TfjsModelError(f"{model_json}: weight path {entry!r:.100} is not a plain relative file name; refusing it")
    parts = entry.split("/")
    if entry.startswith("/") or ".." in parts:
        raise TfjsModelError(f"{model_json}: weight path {entry!r:.100} points outside the model folder "
                             f"(absolute or '..'); refusing to read it")
    path = (folder / entry).resolve()
    if folder not in path.parents:
        raise TfjsModelError(f"{model_json}: weight path {entry!r:.100} resolves to {path}, outside the model folder "
                             f"{folder} (a symlink?); refusing to read it")
    if not path.is_file():
        raise TfjsModelError(f"{model_json}: weight shard {entry!r:.100} is missing")
    return path


def _declared_bytes(model_json: Path, weights: Any) -> Optional[int]:
    """Bytes the weight specs of one group need; None if a string weight makes it variable."""
    if not isinstance(weights, list):
        raise TfjsModelError(f"{model_json}: weightsManifest 'weights' must be a list")
    total = 0
    for w in weights:
        shape = w.get("shape") if isinstance(w, dict) else None
        if not (isinstance(shape, list) and all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d < 2**31
                                                for d in shape)):
            raise TfjsModelError(f"{model_json}: weight {w!r:.100} has no valid shape")
        quant = w.get("quantization")
        dtype = quant.get("dtype") if isinstance(quant, dict) else w.get("dtype")
        if dtype == "string":
            return None
        if not isinstance(dtype, str) or dtype not in _WEIGHT_BYTES:
            raise TfjsModelError(f"{model_json}: weight {w.get('name')!r:.80} has unknown dtype {dtype!r:.30}")
        count = 1
        for d in shape:
            count *= d
        total += count * _WEIGHT_BYTES[dtype]
        if total > MAX_WEIGHT_BYTES:
            raise TfjsModelError(f"{model_json}: its weights declare over {MAX_WEIGHT_BYTES / 2**30:.0f} GiB")
    return total


def check_model_json(model_json: Path) -> dict[str, Any]:
    """Read a TF.js model.json as hostile input before Node sees it: bounded size and nesting, weight
    paths confined to its folder (symlinks resolved), shard sizes equal to what the declared weight
    shapes need. Returns the parsed model.json; TfjsModelError names the problem."""
    from edgeproof.runtime._json import read_json

    model_json = Path(model_json)
    if not model_json.is_file():
        raise TfjsModelError(f"{model_json}: no such model.json")
    data = read_json(model_json, TfjsModelError, max_bytes=MAX_MODEL_JSON_BYTES,
                     fix="convert the model again (edgeproof convert) or restore the original file")
    if not isinstance(data, dict) or not isinstance(data.get("modelTopology"), dict):
        raise TfjsModelError(f"{model_json} has no modelTopology object: not a TF.js model")
    groups = data.get("weightsManifest", [])
    if not isinstance(groups, list):
        raise TfjsModelError(f"{model_json}: weightsManifest must be a list")
    folder = model_json.parent.resolve()
    total = 0
    for group in groups:
        if not isinstance(group, dict) or not isinstance(group.get("paths"), list):
            raise TfjsModelError(f"{model_json}: each weightsManifest entry needs 'paths' and 'weights'")
        shards = [_weight_path(model_json, folder, p) for p in group["paths"]]
        have = sum(p.stat().st_size for p in shards)
        total += have
        if total > MAX_WEIGHT_BYTES:
            raise TfjsModelError(f"{model_json}: weight shards over {MAX_WEIGHT_BYTES / 2**30:.0f} GiB")
        need = _declared_bytes(model_json, group.get("weights"))
        if need is not None and need != have:
            raise TfjsModelError(f"{model_json}: shards {[p.name for p in shards]} hold {have} bytes but the declared "
                                 f"weight shapes need {need}; the model is damaged, convert it again")
    return data


def encode_array(name: str, array: np.ndarray) -> dict[str, Any]:
    """numpy -> wire tensor. TF.js has no 64-bit types: floats go as float32, integers as int32."""
    a = np.asarray(array)
    if a.dtype == np.bool_:
        wire = "bool"
    elif np.issubdtype(a.dtype, np.floating):
        wire = "float32"
    elif np.issubdtype(a.dtype, np.integer):
        if a.size and (a.min() < _INT32.min or a.max() > _INT32.max):
            raise TfjsRuntimeError(f"input {name!r}: {a.dtype} values outside the int32 range cannot go to TF.js")
        wire = "int32"
    else:
        raise TfjsRuntimeError(f"input {name!r}: dtype {a.dtype} is not supported by TF.js (float, int or bool)")
    data = np.ascontiguousarray(a, dtype=_WIRE[wire]).tobytes()
    return {"dtype": wire, "shape": list(a.shape), "data": base64.b64encode(data).decode("ascii")}


def decode_array(wire: dict[str, Any]) -> np.ndarray:
    """Wire tensor -> numpy (float32, int32 or bool)."""
    dtype = _WIRE.get(wire["dtype"])
    if dtype is None:
        raise TfjsRuntimeError(f"TF.js returned a tensor of unsupported dtype {wire['dtype']!r}")
    a = np.frombuffer(base64.b64decode(wire["data"]), dtype=dtype).reshape(wire["shape"])
    return a.astype(np.bool_ if wire["dtype"] == "bool" else wire["dtype"])  # a native, writable copy


def check_installed(node: str = "node") -> tuple[str, Path]:
    """The node executable's path and the node_modules folder with TF.js; raise naming the fix if node or
    TF.js is missing (TF.js is installed into the user cache on first use: edgeproof._js)."""
    try:
        modules = js_modules()  # first: without npm this names the one fix for node and npm both
    except JsDepsError as err:
        raise TfjsRuntimeError(str(err)) from None
    exe = shutil.which(node)
    if exe is None:
        raise TfjsRuntimeError(f"node executable {node!r} is not on PATH: {NODE_FIX}")
    if not (modules / "@tensorflow" / "tfjs" / "package.json").is_file():
        raise TfjsRuntimeError(f"TF.js is not installed in {modules}: {SETUP_HINT}")
    return exe, modules


def _pump_lines(stream: IO[bytes], lines: "queue.Queue[Optional[bytes]]") -> None:
    """Reader thread: stdout lines into a queue; None at EOF."""
    for line in iter(stream.readline, b""):
        lines.put(line)
    lines.put(None)


class TfjsNodeRunner:
    """One Node process running TF.js graph models on the cpu or wasm backend.

    `fallback` (e.g. "cpu") is used only if `backend` fails to initialise; load() then reports
    the backend actually used and a `fallback_reason`. `timeout_s` bounds every request.
    """

    GREEDY_BATCHES_PER_REQUEST = 2

    def __init__(self, backend: str = "wasm", node: str = "node", *,
                 fallback: Optional[str] = None, timeout_s: float = 600.0):
        self.backend, self.fallback, self.timeout_s = backend, fallback, timeout_s
        exe, modules = check_installed(node)
        self._stderr = tempfile.TemporaryFile()
        self._proc = subprocess.Popen([exe, str(RUNNER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=self._stderr, env={**os.environ, "EDGEPROOF_NODE_MODULES": str(modules)})
        self._lines: queue.Queue[Optional[bytes]] = queue.Queue()
        self._reader = threading.Thread(target=_pump_lines, args=(self._proc.stdout, self._lines), daemon=True)
        self._reader.start()
        self._next_id = 0
        self.last_greedy_ms: Optional[float] = None
        self.execution: Optional[str] = None  # "execute" or "executeAsync", once a predict has run

    @property
    def alive(self) -> bool:
        """Whether the Node process is still running (a timed-out request kills it)."""
        return self._proc.poll() is None

    def __enter__(self) -> "TfjsNodeRunner":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def stderr_tail(self, limit: int = 4000) -> str:
        """The last `limit` characters the runner wrote to stderr."""
        self._stderr.flush()
        self._stderr.seek(0, 2)
        size = self._stderr.tell()
        self._stderr.seek(max(0, size - limit))
        return self._stderr.read().decode("utf-8", "replace")

    def _died(self, what: str) -> TfjsRuntimeError:
        code = self._proc.poll()
        state = f"exited with code {code}" if code is not None else "is still running"
        return TfjsRuntimeError(f"TF.js runner {what} ({state}); stderr tail:\n{self.stderr_tail()}")

    def _request(self, cmd: str, **fields: Any) -> dict[str, Any]:
        """Send one request, wait for its response; raise TfjsRuntimeError on any failure."""
        if self._proc.poll() is not None:
            raise self._died(f"is not running, cannot {cmd}")
        self._next_id += 1
        line = json.dumps({"id": self._next_id, "cmd": cmd, **fields}) + "\n"
        try:
            self._proc.stdin.write(line.encode("utf-8"))
            self._proc.stdin.flush()
        except (BrokenPipeError, OSError) as e:
            raise self._died(f"stopped reading requests ({e})") from None
        try:
            raw = self._lines.get(timeout=self.timeout_s)
        except queue.Empty:
            self._proc.kill()
            self._proc.wait()
            raise self._died(f"gave no answer to {cmd} within {self.timeout_s:g} s; killed it") from None
        if raw is None:
            self._lines.put(None)  # later requests see EOF too
            raise self._died(f"died during {cmd}")
        try:
            reply = json.loads(raw)
        except ValueError:
            raise self._died(f"wrote a non-JSON line to stdout: {raw[:200]!r}") from None
        if reply.get("id") != self._next_id:
            raise TfjsRuntimeError(f"TF.js runner answered request {reply.get('id')} to request {self._next_id}")
        if not reply.get("ok"):
            raise TfjsRuntimeError(f"TF.js {cmd} failed: {reply.get('error')}")
        return {k: v for k, v in reply.items() if k not in ("id", "ok")}

    def load(self, model_json: Path) -> dict[str, Any]:
        """Load a graph model.json (replacing any loaded model). Returns backend, load_ms, inputs, outputs.
        The model.json is checked first (check_model_json): Node never sees a hostile one. A refused load
        unloads the previous model too, as a failed load inside Node does: no stale model answers later."""
        try:
            check_model_json(Path(model_json))
        except TfjsModelError:
            self._request("unload")
            raise
        return self._request("load", model=str(Path(model_json).resolve()), backend=self.backend,
                             fallback=self.fallback)

    def predict(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """All model outputs, by output name, for inputs keyed by the model's input names."""
        reply = self._request("predict", inputs={k: encode_array(k, v) for k, v in inputs.items()})
        self.execution = reply.get("execution")
        return {name: decode_array(t) for name, t in reply["outputs"].items()}

    def greedy(self, source_ids: np.ndarray, *, source_name: str, target_name: str, output_name: str,
               bos: int, eos: int, batch_size: int = 64) -> np.ndarray:
        """Greedy translation in TF.js; same result as edgeproof.train._evaluate.greedy_decode."""
        src = np.asarray(source_ids)
        if src.ndim != 2 or not np.issubdtype(src.dtype, np.integer):
            raise TfjsRuntimeError(f"greedy: source ids must be a 2-D integer array, got {src.dtype} {src.shape}")
        # One request per few batches, so the per-request timeout bounds a chunk, not the whole test split.
        chunk = max(1, int(batch_size)) * self.GREEDY_BATCHES_PER_REQUEST
        ids, total_ms = [], 0.0
        for start in range(0, max(len(src), 1), chunk):
            reply = self._request("greedy", source=encode_array(source_name, src[start:start + chunk]),
                                  source_name=source_name, target_name=target_name, output_name=output_name,
                                  bos=int(bos), eos=int(eos), batch_size=int(batch_size))
            total_ms += float(reply["ms"])
            ids.append(decode_array(reply["ids"]))
        self.last_greedy_ms = total_ms
        return np.concatenate(ids) if len(ids) > 1 else ids[0]

    def time(self, inputs: dict[str, np.ndarray], warmup: int = 3, repeats: int = 20) -> dict[str, Any]:
        """first_ms, median_ms and times_ms of whole runs (until every output's data() resolved)."""
        return self._request("time", inputs={k: encode_array(k, v) for k, v in inputs.items()},
                             warmup=int(warmup), repeats=int(repeats))

    def memory(self) -> dict[str, Any]:
        """TF.js tf.memory(): num_tensors and num_bytes alive in the runner (for leak checks)."""
        return self._request("memory")

    def close(self) -> None:
        """End the Node process (EOF on stdin), killing it if it does not exit within 10 s."""
        try:
            self._proc.stdin.close()
        except OSError:
            pass
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._reader.join(timeout=5)
        if not self._reader.is_alive():
            self._proc.stdout.close()
        self._stderr.close()
