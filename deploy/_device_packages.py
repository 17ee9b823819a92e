"""What `deploy --target pi|android` writes beside the bundles: the Pi tarball and README, the Android
README with a Kotlin snippet generated from each manifest (so it cannot drift from the bundle)."""
from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

from edgeproof._atomic import write_bytes_atomic

PI_TARBALL = "edgeproof-pi-bundles.tar.gz"
# Highest op versions tflite-runtime 2.14 (older Pi images) can run, where TF 2.19's converter goes
# beyond them. Measured, and re-checked by tests/test_runtime.py in the .venv-edge environment:
# dynamic-range models use FULLY_CONNECTED version 12 ("Didn't find op for builtin opcode
# 'FULLY_CONNECTED' version '12'"), which only newer runtimes (ai-edge-litert) have.
TFLITE_RUNTIME_2_14_MAX_VERSIONS = {"FULLY_CONNECTED": 11}


def op_versions(tflite: Path) -> dict[str, int]:
    """{builtin op name: highest version used} read from the .tflite flatbuffer."""
    from tensorflow.lite.python import schema_py_generated as schema

    model = schema.Model.GetRootAsModel(Path(tflite).read_bytes(), 0)
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    versions: dict[str, int] = {}
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i)
        name = names.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "CUSTOM")
        versions[name] = max(versions.get(name, 0), code.Version())
    return versions


def runtime_requirements(tflite: Path) -> dict:
    """Which interpreters can load this .tflite: op versions, and whether tflite-runtime 2.14 can."""
    versions = op_versions(tflite)
    too_new = {op: v for op, v in versions.items() if v > TFLITE_RUNTIME_2_14_MAX_VERSIONS.get(op, v)}
    return {"op_versions": versions, "tflite_runtime_2_14": not too_new,
            "reason": None if not too_new else
            f"uses {', '.join(f'{op} version {v}' for op, v in too_new.items())}, which tflite-runtime 2.14 does "
            f"not have: install ai-edge-litert (pip install \"edgeproof[litert]\")"}
_KOTLIN_ARRAYS = {"float32": ("FloatArray", 4), "int32": ("IntArray", 4), "int8": ("ByteArray", 1),
                  "uint8": ("ByteArray", 1), "int64": ("LongArray", 8)}


def _manifests(bundles: list[Path]) -> list[tuple[Path, dict]]:
    return [(b, json.loads((b / "manifest.json").read_text())) for b in sorted(bundles)]


def _example_input(m: dict) -> str:
    return {"classification": "digit.png", "binary_classification": '"A moving, beautifully acted film."',
            "translation": '"Ein Mann fährt Fahrrad."', "generation": "7", "regression": "1.5,4",
            "custom": "inputs.npz"}[m["task"]]


def pi_readme(bundles: list[Path]) -> str:
    lines = ["# edgeproof bundles for Raspberry Pi", "",
             "Every bundle here passed `edgeproof verify` (its verdict is in its manifest.json).", "",
             "## Install (one line)", "",
             "```sh", 'pip install "edgeproof[litert]"      # ai-edge-litert: Raspberry Pi OS 64-bit, Python 3.9+',
             "```", "",
             'On older images use `pip install "edgeproof[tflite]"` (tflite-runtime 2.14, needs numpy<2). '
             "The runtime imports numpy and one TFLite interpreter only; TensorFlow is not needed.", "",
             "## Run and benchmark", "", "```sh"]
    for bundle, m in _manifests(bundles):
        lines.append(f"edgeproof run bundles/{bundle.name} --input {_example_input(m)}")
    lines += ["```", "", "```sh"]
    for bundle, _ in _manifests(bundles):
        lines.append(f"edgeproof bench bundles/{bundle.name} --threads 4")
    lines += ["```", "", "## Bundles", "",
              "| bundle | task | precision | metric (reference -> artifact) | verdict | runs on tflite-runtime 2.14 |",
              "|---|---|---|---|---|---|"]
    for bundle, m in _manifests(bundles):
        metric = m["metric"]
        req = m.get("runtime_requirements") or {}
        old = "yes" if req.get("tflite_runtime_2_14", True) else f"no: {req['reason']}"
        score = (f"{metric['name']} {metric['reference']:.4g} -> {metric['artifact']:.4g}"
                 if metric.get("reference") is not None and metric.get("artifact") is not None
                 else m["verdict"].get("basis") or "-")  # a user model without labels: numeric parity only
        lines.append(f"| {bundle.name} | {m['task']} | {m['mode']} | {score} | {m['verdict']['status']} | {old} |")
    return "\n".join(lines + _aarch64_section(bundles)) + "\n"


def _aarch64_section(bundles: list[Path]) -> list[str]:
    """The bundles' self-test runs on (emulated) aarch64, from their manifests' "proven_on" (deploy --prove-aarch64)."""
    from ._aarch64 import proof_cell

    proven = [(b, m) for b, m in _manifests(bundles) if m.get("proven_on")]
    if not proven:
        return ["", "## Proven on aarch64", "",
                "Not run for these bundles: `edgeproof deploy --target pi --prove-aarch64` runs every bundle's "
                "self-test on emulated aarch64 (a Raspberry Pi 4's Cortex-A72) and records the result here."]
    runs = proven[0][1]["proven_on"]
    lines = ["", "## Proven on aarch64", "",
             f"Each bundle's golden self-test (`edgeproof selftest`) ran on {runs[0]['machine']}, Python "
             f"{runs[0]['python']}, before it shipped. Run it on your Pi the same way: "
             "`edgeproof selftest bundles/*`.", "",
             "| bundle | " + " | ".join(r["interpreter"] for r in runs) + " |", "|---|" + "---|" * len(runs)]
    for bundle, m in proven:
        lines.append(f"| {bundle.name} | " + " | ".join(proof_cell(r) for r in m["proven_on"]) + " |")
    return lines


def write_pi_package(out: Path, bundles: list[Path]) -> Path:
    """out/README.md and out/edgeproof-pi-bundles.tar.gz (bundles/<name>/... + README.md), atomically."""
    readme = pi_readme(bundles)
    write_bytes_atomic(out / "README.md", readme.encode())
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("README.md")
        info.size = len(readme.encode())
        tar.addfile(info, io.BytesIO(readme.encode()))
        for bundle in sorted(bundles):
            tar.add(bundle, arcname=f"bundles/{bundle.name}")
    path = out / PI_TARBALL
    write_bytes_atomic(path, buffer.getvalue())
    return path


def _shape(t: dict) -> list[int]:
    return [1 if d < 0 else d for d in t["shape"]]


def kotlin_snippet(bundle_name: str, m: dict) -> str:
    """LiteRT Interpreter code for one bundle, with its real signature tensor names, shapes and dtypes."""
    lines = [f"// {bundle_name}: {m['model']} ({m['framework']}, {m['mode']}), verdict {m['verdict']['status']}",
             "val interpreter = Interpreter(loadModelFile(context, \"" + bundle_name + "/model.tflite\"))",
             "// Inputs"]
    feeds, fetches = [], []
    for t in m["inputs"]:
        kind, size = _KOTLIN_ARRAYS.get(t["dtype"], ("ByteArray", 1))
        shape = _shape(t)
        count = 1
        for d in shape:
            count *= d
        var = t["tensor"].split(":")[0]
        lines.append(f"// \"{t['tensor']}\": {t['dtype']} {shape} ({t['layout']})"
                     + (f", quantized: real = (q - {t['quantization']['zero_point'][0]}) * {t['quantization']['scale'][0]:.6g}"
                        if t.get("quantization") else ""))
        lines.append(f"val {var} = ByteBuffer.allocateDirect({count * size}).order(ByteOrder.nativeOrder())")
        feeds.append(f"\"{t['tensor']}\" to {var}")
    lines.append("// Outputs")
    for t in m["outputs"]:
        kind, _ = _KOTLIN_ARRAYS.get(t["dtype"], ("ByteArray", 1))
        shape = _shape(t)
        var = t["tensor"].split(":")[0] + "Out"
        inner = f"{kind}({shape[-1]})"
        for d in reversed(shape[:-1]):
            inner = f"Array({d}) {{ {inner} }}"
        lines.append(f"// \"{t['tensor']}\": {t['dtype']} {shape}")
        lines.append(f"val {var} = {inner}")
        fetches.append(f"\"{t['tensor']}\" to {var}")
    lines.append(f"interpreter.runSignature(mapOf({', '.join(feeds)}), mapOf({', '.join(fetches)}))")
    return "\n".join(lines)


def android_readme(bundles: list[Path]) -> str:
    lines = ["# edgeproof bundles for Android (LiteRT)", "",
             "Builtin TFLite ops only (checked at deploy time). Add the runtime to `app/build.gradle`:", "",
             "```gradle", "implementation(\"com.google.ai.edge.litert:litert:1.0.1\")", "```", "",
             "Copy the bundle folders into `app/src/main/assets/`. Each bundle's `preprocessing.json` holds the "
             "scaling, vocabularies and labels; `manifest.json` the verdict and a sha256 per file.", "",
             "```kotlin", "import org.tensorflow.lite.Interpreter", "import java.nio.ByteBuffer",
             "import java.nio.ByteOrder", "import java.nio.MappedByteBuffer", "import java.nio.channels.FileChannel", "",
             "fun loadModelFile(context: android.content.Context, path: String): MappedByteBuffer {",
             "    val fd = context.assets.openFd(path)",
             "    return java.io.FileInputStream(fd.fileDescriptor).channel",
             "        .map(FileChannel.MapMode.READ_ONLY, fd.startOffset, fd.declaredLength)", "}", "```", ""]
    for bundle, m in _manifests(bundles):
        lines += [f"## {bundle.name}", "", "```kotlin", kotlin_snippet(bundle.name, m), "```", ""]
    return "\n".join(lines)


def write_android_readme(out: Path, bundles: list[Path]) -> Path:
    path = out / "README.md"
    write_bytes_atomic(path, android_readme(bundles).encode())
    return path
