"""TFLite cells the first ONNX route cannot give are retried: from a batch-1 export, and when onnx2tf made that one
and it gives none of them, from onnx-tf's batch-1 export (distilbert: onnx2tf's graph converts for TF.js but holds
a Select-only Erf for TFLite; onnx-tf's does not). Unit level: the exports and cell conversions are stand-ins."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from edgeproof._quant import Target
from edgeproof.convert import _api
from edgeproof.convert._onnx_backends import OnnxBackend

AUTO = [OnnxBackend.ONNX2TF, OnnxBackend.ONNX_TF]


class _Source:
    name, framework, static_batch = "m", "onnx", None

    def __init__(self, fallback_to=None):
        self.exports, self.fallback_to = [], fallback_to

    def export(self, root, backends, say, batch_size=None, names=None, unrolled_first=False):
        assert batch_size == 1 and names == _api.STATIC_NAMES and unrolled_first  # tensor lists: no full int8
        self.exports.append([b.value for b in backends])
        used = self.fallback_to or backends[0].value  # fallback_to: onnx2tf failed on the batch-1 graph
        return SimpleNamespace(bound=SimpleNamespace(path=root / used), route=["onnx", used],
                               onnx_backend={"used": used})

    def calibration(self, count):
        return None


@pytest.fixture
def converted_by(monkeypatch):
    """Cells convert only from a graph made by one of `good` backends."""
    good: set[str] = set()

    def convert_cells(name, framework, root, configs, saved_model, feed, route, notes, seconds, describe, say, **kw):
        ok = route[-1] in good
        return [SimpleNamespace(key=c.key, status="ok" if ok else "unsupported", notes=[],
                                reason=None if ok else f"{route[-1]}: TF Select ops: Erf") for c in configs]

    monkeypatch.setattr(_api, "convert_cells", convert_cells)
    monkeypatch.setattr(_api, "_describer", lambda source, exported: None)
    return good


def _cells():
    configs = [SimpleNamespace(key=k, target=Target(k.split("/")[0]), representative_samples=8)
               for k in ("tflite/fp32", "tflite/int8", "tfjs/fp32")]
    records = [SimpleNamespace(key="tflite/fp32", status="unsupported", reason="dynamic: Erf", notes=[]),
               SimpleNamespace(key="tflite/int8", status="unsupported", reason="dynamic: Erf", notes=[]),
               SimpleNamespace(key="tfjs/fp32", status="ok", reason=None, notes=[])]
    return configs, records


def test_cells_onnx2tf_cannot_give_come_from_onnx_tfs_batch1_graph(converted_by, tmp_path):
    converted_by.add("onnx-tf")
    source, (configs, records) = _Source(), _cells()
    out = _api._static_batch_retry(source, tmp_path, configs, records, None, [], AUTO, lambda *a, **k: None)
    assert source.exports == [["onnx2tf", "onnx-tf"], ["onnx-tf"]]
    assert [r.status for r in out] == ["ok", "ok", "ok"] and out[2] is records[2]
    assert all("batch-1 export" in r.notes[0] and "dynamic: Erf" in r.notes[0] for r in out[:2])


def test_no_second_retry_when_onnx2tfs_graph_gives_a_cell_or_onnx_tf_made_it_or_onnx2tf_is_forced(converted_by,
                                                                                                   tmp_path):
    converted_by.add("onnx2tf")  # onnx2tf's batch-1 graph gives the cells: done after one export
    source, (configs, records) = _Source(), _cells()
    out = _api._static_batch_retry(source, tmp_path, configs, records, None, [], AUTO, lambda *a, **k: None)
    assert source.exports == [["onnx2tf", "onnx-tf"]] and [r.status for r in out] == ["ok", "ok", "ok"]
    converted_by.clear()
    source = _Source(fallback_to="onnx-tf")  # onnx-tf already made the batch-1 graph: nothing else to try
    out = _api._static_batch_retry(source, tmp_path, *_cells(), None, [], AUTO, lambda *a, **k: None)
    assert source.exports == [["onnx2tf", "onnx-tf"]] and [r.status for r in out][:2] == ["unsupported"] * 2
    source = _Source()  # --onnx-backend onnx2tf: onnx-tf is not the user's choice
    out = _api._static_batch_retry(source, tmp_path, *_cells(), None, [], [OnnxBackend.ONNX2TF],
                                   lambda *a, **k: None)
    assert source.exports == [["onnx2tf"]] and out[0].reason == "dynamic: Erf"
