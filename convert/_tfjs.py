"""SavedModel -> TF.js graph model in fp32, fp16 or uint8 (weight quantization).

The TF.js converter runs grappler over the frozen graph. With TensorFlow's oneDNN optimizations
on (the x86 default) grappler fuses primitive ops into oneDNN-only kernels such as
`_MklLayerNorm` that TF.js does not have, so conversions run in a worker process started
with TF_ENABLE_ONEDNN_OPTS=0 (see _worker)."""
from __future__ import annotations

import base64
import contextlib
import json
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from edgeproof._quant import QuantMode

_DTYPE_MAP = {QuantMode.FP32: None, QuantMode.FP16: {"float16": True}, QuantMode.UINT8: {"uint8": True}}


def convert_in_process(saved_model: Path, out_dir: Path, mode: QuantMode, dtype_map: dict | None = None) -> None:
    """`dtype_map`: a quantization_dtype_map of its own (a repair recipe: some weights kept at 16 bits)."""
    from edgeproof._frameworks import import_tensorflowjs

    tfjs = import_tensorflowjs()
    with _erfc_allowed():
        tfjs.converters.convert_tf_saved_model(str(saved_model), str(out_dir), signature_def="serving_default",
                                               strip_debug_ops=True,  # Assert/CheckNumerics only check; no kernel
                                               quantization_dtype_map=dtype_map or _DTYPE_MAP[QuantMode(mode)])
    rewrite_erfc(Path(out_dir) / "model.json")
    drop_variadic_control_inputs(Path(out_dir) / "model.json")
    unfuse_tensor_bias_matmuls(Path(out_dir) / "model.json")
    unfuse_tensor_bias_convs(Path(out_dir) / "model.json")
    flatten_weight_batch_matmuls(Path(out_dir) / "model.json")
    flatten_per_channel_conv_biases(Path(out_dir) / "model.json")
    check_tfjs_model(out_dir)


@contextlib.contextmanager
def _erfc_allowed():
    """The converter's op check without Erfc, which `rewrite_erfc` then replaces: TensorFlow's exact GELU
    (`tf.nn.gelu`, what onnx2tf writes for ONNX's Gelu) is 0.5 x erfc(-x / sqrt 2), and TF.js has Erf but no Erfc."""
    from tensorflowjs.converters import tf_saved_model_conversion_v2 as v2

    original = v2.validate
    v2.validate = lambda *args: original(*args) - {"Erfc"}
    try:
        yield
    finally:
        v2.validate = original


def rewrite_erfc(model_json: Path) -> list[str]:
    """Every `Erfc(x)` node as `OnesLike(x) - Erf(x)` (no new weights). 1 - erf loses erfc's relative precision
    where erfc is tiny (x > ~4), which in GELU is multiplied by x * 0.5 with x < -5: below 1e-6 absolute.
    Returns the nodes rewritten."""
    def rewrite(node: dict, shapes: dict) -> Optional[list[dict]]:
        if node.get("op") != "Erfc":
            return None
        base, x = node["name"], node["input"][0]
        t = {k: node["attr"][k] for k in ("T",) if k in node.get("attr", {})}
        node.update({"op": "Sub", "input": [f"{base}/one", f"{base}/erf"] + node["input"][1:], "attr": dict(t)})
        return [{"name": f"{base}/erf", "op": "Erf", "input": [x], "attr": dict(t)},
                {"name": f"{base}/one", "op": "OnesLike", "input": [x], "attr": dict(t)}]

    return _rewrite_nodes(model_json, rewrite)


# TF.js ops whose mapper reads the inputs up to the end (or the last): TF.js counts a control input `^x` as a
# data input, so in these it becomes an addend, a concatenated tensor or the axis.
VARIADIC_OPS = {"AddN", "ConcatV2", "Concat", "Pack", "IdentityN", "ShapeN", "Einsum"}


def drop_variadic_control_inputs(model_json: Path) -> list[str]:
    """Control inputs of variadic ops dropped when a data input remains (that input already puts the node in its
    loop frame; the graph has no side effects to order). Grappler writes them into loop bodies: torch's GRU through
    onnx2tf gave `AddN(bias_a, bias_b, ^loop_body_control)`, which TF.js refused: "All tensors passed to tf.addN()
    must have the same dtype". Returns the nodes changed."""
    def rewrite(node: dict, shapes: dict) -> Optional[list[dict]]:
        inputs = node.get("input", [])
        data = [i for i in inputs if not i.startswith("^")]
        if node.get("op") not in VARIADIC_OPS or not data or len(data) == len(inputs):
            return None
        node["input"] = data
        return []

    return _rewrite_nodes(model_json, rewrite)


def _rewrite_nodes(model_json: Path, rewrite: Callable[[dict, dict], Optional[list[dict]]]) -> list[str]:
    """`rewrite(node, weight shapes)` on every node of the graph and its functions: it changes the node in place and
    returns the nodes it adds (None: left alone). model.json is written again when any changed; returns their names."""
    manifest = json.loads(model_json.read_text())
    shapes = {w["name"]: [int(d) for d in w["shape"]] for g in manifest["weightsManifest"] for w in g["weights"]}
    changed = []
    for nodes in _graph_nodes(manifest["modelTopology"]):
        added = []
        for node in list(nodes):
            name = node.get("name")
            extra = rewrite(node, shapes)
            if extra is not None:
                added.extend(extra)
                changed.append(name)
        nodes.extend(added)
    if changed:
        model_json.write_text(json.dumps(manifest))
    return changed


def unfuse_tensor_bias_matmuls(model_json: Path) -> list[str]:
    """Split `_FusedMatMul` nodes whose "bias" is a computed tensor back into MatMul + AddV2.

    The converter fuses any MatMul followed by an Add, e.g. an LSTM step's `x @ W + h @ U`, where the
    addend is a [batch, units] tensor. TF.js' wasm backend only implements rank-1 (weight) biases and
    fails with "_FusedMatMul only supports rank-1 bias"; cpu and webgl are unaffected. Fusions with a
    1-D weight bias (Dense layers) are kept. Returns the names of the nodes split.
    """
    def rewrite(node: dict, shapes: dict) -> Optional[list[dict]]:
        if node.get("op") != "_FusedMatMul" or len(node.get("input", [])) < 3:
            return None
        bias = node["input"][2]
        fused = [base64.b64decode(s).decode() for s in node["attr"]["fused_ops"]["list"].get("s", [])]
        if len(shapes.get(bias.split(":")[0], [None, None])) == 1 or fused != ["BiasAdd"]:
            return None
        attr = node["attr"]
        matmul = {"name": f"{node['name']}/unfused_matmul", "op": "MatMul", "input": node["input"][:2],
                  "attr": {k: attr[k] for k in ("transpose_a", "transpose_b", "T") if k in attr}}
        if "device" in node:
            matmul["device"] = node["device"]
        node["op"] = "AddV2"
        node["input"] = [matmul["name"], bias] + [i for i in node["input"][3:] if i.startswith("^")]
        node["attr"] = {"T": attr["T"]} if "T" in attr else {}
        return [matmul]

    return _rewrite_nodes(model_json, rewrite)


FUSED_CONVS = {"_FusedConv2D": "Conv2D", "FusedDepthwiseConv2dNative": "DepthwiseConv2dNative"}
CONV_ATTRS = ("T", "strides", "padding", "data_format", "dilations", "explicit_paddings", "use_cudnn_on_gpu")
ACTIVATIONS = {"Relu", "Relu6", "Elu", "Sigmoid", "Tanh"}


def _graph_nodes(graph: dict) -> list[list[dict]]:
    return [graph.get("node", [])] + [f.get("nodeDef", []) for f in graph.get("library", {}).get("function", [])]


def _vector_like(shape: list[int] | None) -> bool:
    """A weight TF.js takes as a fused bias: [C], or [1, 1, 1, C] (declared [C] by flatten_per_channel_conv_biases)."""
    return shape is not None and len(shape) >= 1 and all(d == 1 for d in shape[:-1])


def unfuse_tensor_bias_convs(model_json: Path) -> list[str]:
    """Split fused convolutions whose "bias" is a computed tensor (an FPN's `conv(x) + upsample(y)`, which the
    converter fuses like a bias) or a weight of another shape (a scalar: MobileNetV3 through tf2onnx) back into the
    convolution, AddV2 and the fused activation. TF.js's wasm backend refuses them at run time ("FusedConv2D only
    supports rank-1 bias but got rank 4 / rank 0"). Returns the nodes split."""
    def rewrite(node: dict, shapes: dict) -> Optional[list[dict]]:
        if node.get("op") not in FUSED_CONVS or len(node.get("input", [])) < 3:
            return None
        attr = node["attr"]
        fused = [base64.b64decode(s).decode() for s in attr.get("fused_ops", {}).get("list", {}).get("s", [])]
        bias = node["input"][2]
        if _vector_like(shapes.get(bias.split(":")[0])) or not fused or fused[0] != "BiasAdd" \
                or len(fused) > 2 or not set(fused[1:]) <= ACTIVATIONS:
            return None
        base, t = node["name"], {k: attr[k] for k in ("T",) if k in attr}
        conv = {"name": f"{base}/unfused_conv", "op": FUSED_CONVS[node["op"]], "input": node["input"][:2],
                "attr": {k: attr[k] for k in CONV_ATTRS if k in attr}}
        chain = [conv, {"name": f"{base}/unfused_add" if len(fused) > 1 else base, "op": "AddV2",
                        "input": [conv["name"], bias], "attr": dict(t)}]
        if len(fused) > 1:
            chain.append({"name": base, "op": fused[1], "input": [chain[-1]["name"]], "attr": dict(t)})
        chain[-1]["input"] += [i for i in node["input"][3:] if i.startswith("^")]  # control inputs
        for extra in chain:
            if "device" in node:
                extra["device"] = node["device"]
        node.clear()
        node.update(chain[-1])
        return chain[:-1]

    return _rewrite_nodes(model_json, rewrite)


def flatten_per_channel_conv_biases(model_json: Path) -> list[str]:
    """A fused convolution's bias weight of shape [1, 1, 1, C] (onnx2tf writes a conv's bias as an Add of such a
    constant, and the converter fuses it) declared as [C]: the same bytes in the same order. TF.js's wasm backend
    refuses the rank-4 form at run time ("FusedConv2D only supports rank-1 bias but got rank 4"). Only weights
    that no other node reads are changed. Returns the names of the weights flattened."""
    manifest = json.loads(model_json.read_text())
    weights = {w["name"]: w for g in manifest["weightsManifest"] for w in g["weights"]}
    graph = manifest["modelTopology"]
    nodes = [n for group in _graph_nodes(graph) for n in group]
    readers: dict[str, int] = {}
    for node in nodes:
        for name in node.get("input", []):
            readers[name.split(":")[0]] = readers.get(name.split(":")[0], 0) + 1
    flattened = []
    for node in nodes:
        if node.get("op") not in FUSED_CONVS or len(node.get("input", [])) < 3:
            continue
        fused = [base64.b64decode(s).decode() for s in node.get("attr", {}).get("fused_ops", {}).get("list", {})
                 .get("s", [])]
        bias = weights.get(node["input"][2].split(":")[0])
        if not fused or fused[0] != "BiasAdd" or bias is None or readers.get(bias["name"]) != 1:
            continue
        shape = [int(d) for d in bias["shape"]]
        if len(shape) > 1 and all(d == 1 for d in shape[:-1]):
            bias["shape"] = shape[-1:]
            flattened.append(bias["name"])
    if flattened:
        model_json.write_text(json.dumps(manifest))
    return flattened


CONSTS_SHARD = "group-edgeproof-consts.bin"


INT32 = {"type": "DT_INT32"}


def _matmul_2d_nodes(base: str, x: str, w: str, kn: tuple[int, int], adj_y: bool, t: dict,
                     const: Callable[[Any], str]) -> list[dict]:
    """x [..., K] flattened to [-1, K], times W, and the output shape x.shape[:-1] + [N] (the Reshape back)."""
    k, n = kn
    return [
        {"name": f"{base}/flat", "op": "Reshape", "input": [x, const([-1, k])], "attr": {"T": t, "Tshape": INT32}},
        {"name": f"{base}/matmul2d", "op": "MatMul", "input": [f"{base}/flat", w],
         "attr": {"T": t, "transpose_a": {"b": False}, "transpose_b": {"b": adj_y}}},
        {"name": f"{base}/x_shape", "op": "Shape", "input": [x], "attr": {"T": t, "out_type": INT32}},
        {"name": f"{base}/lead_dims", "op": "StridedSlice",
         "input": [f"{base}/x_shape", const([0]), const([-1]), const([1])],
         "attr": {"T": INT32, "Index": INT32, **{m: {"i": "0"} for m in (
             "begin_mask", "end_mask", "ellipsis_mask", "new_axis_mask", "shrink_axis_mask")}}},
        {"name": f"{base}/out_shape", "op": "ConcatV2", "input": [f"{base}/lead_dims", const([n]), const(0)],
         "attr": {"T": INT32, "Tidx": INT32, "N": {"i": "2"}}},
    ]


def flatten_weight_batch_matmuls(model_json: Path) -> list[str]:
    """Rewrite `BatchMatMulV2(x, W)` with a 2-D weight W and x of rank 3+ into
    `Reshape(MatMul(Reshape(x, [-1, K]), W), shape(x)[:-1] + [N])`.

    onnx2tf emits a PyTorch `Linear` on [batch, length, features] as a broadcasting BatchMatMulV2.
    TF.js' wasm backend runs that in a generic batched kernel, 8-13x slower than the same product as one
    2-D MatMul (`node benchmarks/tfjs_matmul.mjs`), which made the PyTorch translator's TF.js graph
    about 8x slower than the Keras one. The new shape constants go into their own weight shard.
    Returns the names of the nodes rewritten."""
    manifest = json.loads(model_json.read_text())
    weights = {w["name"]: w for g in manifest["weightsManifest"] for w in g["weights"]}
    nodes = manifest["modelTopology"].get("node", [])
    consts: dict[str, np.ndarray] = {}

    def const(value: list[int] | int) -> str:
        array = np.asarray(value, dtype=np.int32)
        name = "edgeproof/const_" + ("s" if array.ndim == 0 else "_".join(str(v).replace("-", "m") for v in array))
        if name not in consts:
            consts[name] = array
            nodes.append({"name": name, "op": "Const", "attr": {
                "value": {"tensor": {"dtype": "DT_INT32",
                                     "tensorShape": {"dim": [{"size": str(d)} for d in array.shape]}}},
                "dtype": {"type": "DT_INT32"}}})
        return name

    rewritten = []
    for node in list(nodes):
        if node.get("op") != "BatchMatMulV2" or len(node.get("input", [])) != 2:
            continue
        x, w = node["input"]
        weight = weights.get(w.split(":")[0])
        attr = node.get("attr", {})
        if weight is None or len(weight["shape"]) != 2 or x.split(":")[0] in weights \
                or attr.get("adj_x", {}).get("b", False):
            continue
        adj_y = attr.get("adj_y", {}).get("b", False)
        k, n = weight["shape"][::-1] if adj_y else weight["shape"]
        base, t = node["name"], attr.get("T", {"type": "DT_FLOAT"})
        nodes.extend(_matmul_2d_nodes(base, x, w, (k, n), adj_y, t, const))
        node["op"] = "Reshape"
        node["input"] = [f"{base}/matmul2d", f"{base}/out_shape"]
        node["attr"] = {"T": t, "Tshape": INT32}
        rewritten.append(base)
    if rewritten:
        data = b"".join(a.tobytes() for a in consts.values())
        (model_json.parent / CONSTS_SHARD).write_bytes(data)
        manifest["weightsManifest"].append({"paths": [CONSTS_SHARD], "weights": [
            {"name": name, "shape": list(a.shape), "dtype": "int32"} for name, a in consts.items()]})
        model_json.write_text(json.dumps(manifest))
    return rewritten


def check_tfjs_model(out_dir: Path) -> dict[str, Any]:
    """model.json is well-formed and every weight file holds exactly the bytes it declares."""
    manifest = json.loads((Path(out_dir) / "model.json").read_text())
    if manifest.get("format") != "graph-model" or "modelTopology" not in manifest:
        raise ValueError(f"{out_dir}/model.json is not a TF.js graph model")
    declared = 0
    for group in manifest["weightsManifest"]:
        for w in group["weights"]:
            count = int(np.prod(w["shape"])) if w["shape"] else 1
            q = w.get("quantization")
            itemsize = np.dtype(q["dtype"]).itemsize if q else np.dtype(w["dtype"]).itemsize
            declared += count * itemsize
    actual = sum((Path(out_dir) / p).stat().st_size for g in manifest["weightsManifest"] for p in g["paths"])
    if actual != declared:
        raise ValueError(f"{out_dir}: weight files hold {actual} bytes, model.json declares {declared}")
    signature = manifest.get("signature", {})
    return {"inputs": signature.get("inputs", {}), "outputs": signature.get("outputs", {}), "weight_bytes": actual}
