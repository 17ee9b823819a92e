"""Everything that is timed, as zero-argument calls on fixed inputs, numpy in and numpy out:

- ours: a deployed bundle through `edgeproof.runtime.Model.predict` (what a device runs), plus the
  bare `interpreter.invoke()` of the same .tflite and, as a diagnostic, the .tflite with XNNPACK off;
- peers: the source model (Keras under tf.function, PyTorch eager and torch.compile) and ONNX
  Runtime on the torch route's model.onnx;
- floors: the per-call cost of an (almost) empty model in each runtime.

Each builder times its own load and first call. Thread counts are process-wide settings made by the
worker before any of this runs.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from ._inventory import cell_mode
from ._timing import timed


@dataclass
class Contestant:
    name: str  # unique within a group, e.g. "tflite int8", "torch eager"
    kind: str  # ours | invoke | no-xnnpack | peer | floor
    call: Optional[Callable[[], Any]]
    mode: Optional[str] = None
    bundle: Optional[str] = None
    load_ms: Optional[float] = None
    first_ms: Optional[float] = None
    error: Optional[str] = None  # "unavailable: <reason>" when it could not be built or run
    extra: dict[str, Any] = field(default_factory=dict)


def _reason(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0][:240] if text else ''}".rstrip(": ")


def unavailable(name: str, kind: str, err: BaseException | str, **kw) -> Contestant:
    reason = err if isinstance(err, str) else _reason(err)
    return Contestant(name, kind, None, error=f"unavailable: {reason}", **kw)


# -- ours -----------------------------------------------------------------------------------------
def tflite_contestants(bundle: Path, inputs: dict[str, np.ndarray], threads: int,
                       diagnose: bool = False) -> list[Contestant]:
    """The bundle through the edge runtime, its bare invoke(), and optionally without XNNPACK."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    from edgeproof.runtime import Model
    from edgeproof.runtime._signature import to_artifact

    out: list[Contestant] = []
    try:
        model, load_ms = timed(lambda: Model.load(bundle, num_threads=threads))
        manifest_mode = cell_mode(model.manifest)
        _, first_ms = timed(lambda: model.predict(inputs))
        out.append(Contestant(f"tflite {manifest_mode}", "ours", lambda: model.predict(inputs), manifest_mode,
                              bundle.name, load_ms, first_ms))
    except Exception as err:  # a bundle that does not load is a row with its reason, not a crash
        return [unavailable(f"tflite {bundle.name}", "ours", err, bundle=bundle.name)]

    feed = {b.name: to_artifact(b, inputs[b.canonical]) for b in model.runner.inputs}
    path = model.runner.path
    variants = [("invoke", OpResolverType.AUTO)]
    if diagnose:
        variants.append(("no-xnnpack", OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES))
    for kind, resolver in variants:  # both: inputs set once, then invoke() alone
        name = f"tflite {manifest_mode} {kind}"
        try:
            interp, load_ms = timed(lambda: _interpreter(Interpreter, path, threads, resolver))
            details = interp.get_signature_runner().get_input_details()
            for key, value in feed.items():
                interp.set_tensor(details[key]["index"], value)
            _, first_ms = timed(interp.invoke)
            out.append(Contestant(name, kind, interp.invoke, manifest_mode, bundle.name, load_ms, first_ms))
        except Exception as err:
            out.append(unavailable(name, kind, err, mode=manifest_mode, bundle=bundle.name))
    return out


def _interpreter(cls, path: Path, threads: int, resolver):
    interp = cls(model_path=str(path), num_threads=threads, experimental_op_resolver_type=resolver)
    interp.allocate_tensors()
    return interp


# -- the source model -----------------------------------------------------------------------------
def load_source(checkpoint: Path):
    """(the net to time, the loaded checkpoint): the generator for the GAN."""
    from edgeproof.train import load_checkpoint

    ckpt = load_checkpoint(checkpoint)
    net = ckpt.model[0] if isinstance(ckpt.model, tuple) else ckpt.model
    return net, ckpt


def keras_contestant(checkpoint: Path, inputs: dict[str, np.ndarray]) -> Contestant:
    """The Keras model called inside one tf.function (traced on the first call), numpy in/out."""
    try:
        from edgeproof._frameworks import import_tensorflow

        tf = import_tensorflow()
        (net, ckpt), load_ms = timed(lambda: load_source(checkpoint))
        arrays = [inputs[t.name] for t in ckpt.spec.inputs]

        @tf.function(reduce_retracing=True)
        def forward(*args):
            return net(list(args) if len(args) > 1 else args[0], training=False)

        def call():
            return forward(*arrays).numpy()

        _, first_ms = timed(call)
        return Contestant("keras tf.function", "peer", call, load_ms=load_ms, first_ms=first_ms)
    except Exception as err:
        return unavailable("keras tf.function", "peer", err)


def _torch_inputs(ckpt, inputs: dict[str, np.ndarray]):
    import torch

    from edgeproof.train._torch_trainer import to_framework_layout

    arrays = to_framework_layout(ckpt.spec, inputs)
    return [torch.from_numpy(np.ascontiguousarray(arrays[t.name])) for t in ckpt.spec.inputs]


def torch_contestants(checkpoint: Path, inputs: dict[str, np.ndarray], compile_: bool = True) -> list[Contestant]:
    """PyTorch eager, and torch.compile (inductor) where it works; both under inference_mode."""
    import torch

    out = []
    try:
        (net, ckpt), load_ms = timed(lambda: load_source(checkpoint))
        net.eval()
        tensors = _torch_inputs(ckpt, inputs)

        @torch.inference_mode()
        def eager():
            return net(*tensors).numpy()

        _, first_ms = timed(eager)
        out.append(Contestant("torch eager", "peer", eager, load_ms=load_ms, first_ms=first_ms))
    except Exception as err:
        return [unavailable("torch eager", "peer", err), unavailable("torch.compile", "peer", "the model did not load")]
    if not compile_:
        out.append(unavailable("torch.compile", "peer", "skipped (--no-compile)"))
        return out
    try:
        compiled, compile_ms = timed(lambda: torch.compile(net, dynamic=False))

        @torch.inference_mode()
        def fast():
            return compiled(*tensors).numpy()

        _, first_ms = timed(fast)  # inductor compiles here
        out.append(Contestant("torch.compile", "peer", fast, load_ms=load_ms + compile_ms, first_ms=first_ms,
                              extra={"note": "first call includes the inductor compilation"}))
    except Exception as err:
        out.append(unavailable("torch.compile", "peer", err))
    return out


def torch_macs(checkpoint: Path, inputs: dict[str, np.ndarray]) -> tuple[int, list[str]]:
    """(MACs of one forward pass counted by torch's FlopCounterMode (FLOPs / 2), the recurrent aten
    ops it ran that FlopCounterMode has no formula for): a cross-check, a lower bound when the list
    is not empty."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils.flop_counter import FlopCounterMode, flop_registry

    class Ops(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.seen: set = set()

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.seen.add(func.overloadpacket)
            return func(*args, **(kwargs or {}))

    net, ckpt = load_source(checkpoint)
    tensors = _torch_inputs(ckpt, inputs)
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        net(*tensors)
    with torch.inference_mode(), Ops() as ops:
        net(*tensors)
    # recurrent kernels: FlopCounterMode has no formula for them and sees no matmuls inside them
    uncounted = sorted(str(op) for op in ops.seen if op not in flop_registry
                       and any(h in str(op) for h in ("lstm", "gru", "rnn_")))
    return int(counter.get_total_flops()) // 2, uncounted


def _ort_feed(session, arrays: list[np.ndarray]) -> dict[str, np.ndarray]:
    types = {"tensor(float)": np.float32, "tensor(int64)": np.int64, "tensor(int32)": np.int32,
             "tensor(double)": np.float64}
    feed = {}
    for meta, array in zip(session.get_inputs(), arrays):
        feed[meta.name] = np.ascontiguousarray(array.astype(types.get(meta.type, array.dtype), copy=False))
    return feed


def ort_contestant(onnx_path: Path, spec, inputs: dict[str, np.ndarray], threads: int,
                   name: str = "onnxruntime fp32") -> Contestant:
    """ONNX Runtime (CPU provider, all graph optimizations) on the torch route's model.onnx."""
    try:
        import onnxruntime as ort

        from edgeproof.train._torch_trainer import to_framework_layout

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        session, load_ms = timed(lambda: ort.InferenceSession(str(onnx_path), options,
                                                              providers=["CPUExecutionProvider"]))
        arrays = to_framework_layout(spec, inputs)
        feed = _ort_feed(session, [arrays[t.name] for t in spec.inputs])

        def call():
            return session.run(None, feed)[0]

        _, first_ms = timed(call)
        return Contestant(name, "peer", call, load_ms=load_ms, first_ms=first_ms)
    except Exception as err:
        return unavailable(name, "peer", err)


# -- floors: an (almost) empty model in each runtime ------------------------------------------------
def _empty_tflite(folder: Path) -> Path:
    """A .tflite whose one op adds 1 to one float, with a serving signature like the real models."""
    from edgeproof._frameworks import import_tensorflow

    tf = import_tensorflow()

    class Empty(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([1, 1], tf.float32, name="x")])
        def serve(self, x):
            return {"y": x + 1.0}

    module = Empty()
    saved = folder / "empty_saved_model"
    tf.saved_model.save(module, str(saved), signatures={"serving_default": module.serve})
    path = folder / "empty.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_saved_model(str(saved)).convert())
    return path


def _empty_onnx(folder: Path) -> Path:
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Add", ["x", "one"], ["y"])], "empty",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1])],
                              [helper.make_tensor("one", TensorProto.FLOAT, [1], [1.0])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = folder / "empty.onnx"
    onnx.save(model, str(path))
    return path


def floor_contestants(threads: int, torch_too: bool = True) -> list[Contestant]:
    """x + 1 on one float in each runtime, at the same API level as the models' timings."""
    x = np.ones((1, 1), np.float32)
    folder = Path(tempfile.mkdtemp(prefix="edgeproof-bench-floor-"))
    out: list[Contestant] = []
    try:
        from ai_edge_litert.interpreter import Interpreter

        from edgeproof.runtime._tflite_runner import TFLiteRunner

        path = _empty_tflite(folder)
        probe = Interpreter(model_path=str(path)).get_signature_runner()
        real_in = next(iter(probe.get_input_details()))
        real_out = next(iter(probe.get_output_details()))
        runner, load_ms = timed(lambda: TFLiteRunner(
            path, [("x", "NF")], [("y", "NF")], [{"name": real_in, "shape": [1, 1], "dtype": "float32", "layout": "NF"}],
            [{"name": real_out, "shape": [1, 1], "dtype": "float32", "layout": "NF"}], num_threads=threads))
        feed = {"x": x}
        out.append(Contestant("empty tflite (runtime)", "floor", lambda: runner(feed)["y"], load_ms=load_ms))
        interp = Interpreter(model_path=str(path), num_threads=threads)
        interp.allocate_tensors()
        interp.set_tensor(interp.get_input_details()[0]["index"], x)
        out.append(Contestant("empty tflite invoke", "floor", interp.invoke))
    except Exception as err:
        out.append(unavailable("empty tflite (runtime)", "floor", err))
    try:
        from edgeproof._frameworks import import_tensorflow

        tf = import_tensorflow()
        fn = tf.function(lambda t: t + 1.0)
        out.append(Contestant("empty keras tf.function", "floor", lambda: fn(x).numpy()))
    except Exception as err:
        out.append(unavailable("empty keras tf.function", "floor", err))
    if torch_too:
        try:
            import torch

            t = torch.from_numpy(x)

            @torch.inference_mode()
            def eager():
                return (t + 1).numpy()

            out.append(Contestant("empty torch eager", "floor", eager))
        except Exception as err:
            out.append(unavailable("empty torch eager", "floor", err))
    try:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(str(_empty_onnx(folder)), options, providers=["CPUExecutionProvider"])
        feed = {"x": x}
        out.append(Contestant("empty onnxruntime", "floor", lambda: session.run(None, feed)[0]))
    except Exception as err:
        out.append(unavailable("empty onnxruntime", "floor", err))
    return out
