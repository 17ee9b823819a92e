"""SavedModel -> TF.js graph model in fp32, fp16 or uint8 (weight quantization).

The TF.js converter runs grappler over the frozen graph. With TensorFlow's oneDNN optimizations
on (the x86 default) grappler fuses primitive ops into oneDNN-only kernels such as
`_MklLayerNorm` that TF.js does not have, so conversions run in a worker process started
with TF_ENABLE_ONEDNN_OPTS=0 (see _worker)."""
from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import numpy as np

from edgeproof._quant import QuantMode

_DTYPE_MAP = {QuantMode.FP32: None, QuantMode.FP16: {"float16": True}, QuantMode.UINT8: {"uint8": True}}


def convert_in_process(saved_model: Path, out_dir: Path, mode: QuantMode) -> None:
    from edgeproof._frameworks import import_tensorflowjs

    tfjs = import_tensorflowjs()
    tfjs.converters.convert_tf_saved_model(str(saved_model), str(out_dir), signature_def="serving_default",
                                           quantization_dtype_map=_DTYPE_MAP[mode])
    unfuse_tensor_bias_matmuls(Path(out_dir) / "model.json")
    check_tfjs_model(out_dir)


def unfuse_tensor_bias_matmuls(model_json: Path) -> list[str]:
    """Split `_FusedMatMul` nodes whose "bias" is a computed tensor back into MatMul + AddV2.

    The converter fuses any MatMul followed by an Add, e.g. an LSTM step's `x @ W + h @ U`, where the
    addend is a [batch, units] tensor. TF.js' wasm backend only implements rank-1 (weight) biases and
    fails with "_FusedMatMul only supports rank-1 bias"; cpu and webgl are unaffected. Fusions with a
    1-D weight bias (Dense layers) are kept. Returns the names of the nodes split.
    """
    manifest = json.loads(model_json.read_text())
    weight_ranks = {w["name"]: len(w["shape"]) for g in manifest["weightsManifest"] for w in g["weights"]}
    graph = manifest["modelTopology"]
    split = []
    for nodes in [graph.get("node", [])] + [f.get("nodeDef", []) for f in graph.get("library", {}).get("function", [])]:
        added = []
        for node in nodes:
            if node.get("op") != "_FusedMatMul" or len(node.get("input", [])) < 3:
                continue
            bias = node["input"][2]
            fused = [base64.b64decode(s).decode() for s in node["attr"]["fused_ops"]["list"].get("s", [])]
            if weight_ranks.get(bias.split(":")[0]) == 1 or fused != ["BiasAdd"]:
                continue
            attr = node["attr"]
            matmul = {"name": f"{node['name']}/unfused_matmul", "op": "MatMul", "input": node["input"][:2],
                      "attr": {k: attr[k] for k in ("transpose_a", "transpose_b", "T") if k in attr}}
            if "device" in node:
                matmul["device"] = node["device"]
            node["op"] = "AddV2"
            node["input"] = [matmul["name"], bias] + [i for i in node["input"][3:] if i.startswith("^")]
            node["attr"] = {"T": attr["T"]} if "T" in attr else {}
            added.append(matmul)
            split.append(node["name"])
        nodes.extend(added)
    if split:
        model_json.write_text(json.dumps(manifest))
    return split


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
