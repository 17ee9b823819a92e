"""One model locator for reference and user models: every model lives in artifacts/<name>/<folder>/, where
<folder> is its framework (keras, torch) or, for a user's model, its source kind (keras, onnx, torch). A
zoo model's folder holds checkpoint/checkpoint.json; a user model's holds user_model.json. verify,
deploy, the reports and the pipeline find models here and treat both alike; `open_source()` gives the
Source every stage takes."""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional

from edgeproof._registry import get_spec, model_names, training_order
from edgeproof._spec import Framework, ModelContract
from edgeproof.errors import ModelFileNotFoundError, SampleDataError, UnknownModelError, UserModelError

from ._source import Source, SourceKind
from ._user_contract import SOURCES, USER_MODEL_JSON, UserModelInfo, contract_of, read_info

CHECKPOINT_META = "checkpoint/checkpoint.json"
KERAS_FILES = ("source_model.keras", "source_model.h5", "source_model.hdf5", "source_model")


@dataclass(frozen=True)
class ModelFolder:
    """Where one model (a zoo model in one framework, or a user's model) keeps everything."""

    name: str
    framework: str  # the folder: keras | torch (zoo) or keras | onnx | torch (users' models)
    root: Path
    origin: SourceKind

    @property
    def label(self) -> str:
        return f"{self.name}/{self.framework}"

    @property
    def is_zoo(self) -> bool:
        return self.origin is SourceKind.ZOO

    def info(self) -> Optional[UserModelInfo]:
        return None if self.is_zoo else read_info(self.root)

    def contract(self) -> ModelContract:
        """The model's contract without loading the model (no framework is imported)."""
        return get_spec(self.name) if self.is_zoo else contract_of(self.info())

    def source_meta(self) -> dict[str, Any]:
        """What the bundles need besides the artifact: preprocessing (tokenizers, scales, labels), where the
        model came from and how it was trained."""
        if self.is_zoo:
            meta = json.loads((self.root / CHECKPOINT_META).read_text())
            return {**meta, "source": {"kind": SourceKind.ZOO.value, "framework": self.framework}}
        info = self.info()
        return {"preprocessing": info.preprocessing(), "source": {"kind": info.source, "path": info.source_path}}

    def verify_hint(self) -> str:
        return f"edgeproof verify --model {self.name} --framework {self.framework}"

    def check_reopenable(self) -> None:
        """Raise the UserModelError `open_source` would, from cheap file checks only (no framework loads)."""
        if not self.is_zoo:
            info = self.info()
            _source_model(self.root, info)
            _sample(info, None)

    def open_source(self, *, data_dir: Optional[str] = None, custom_objects: Optional[Mapping[str, Any]] = None,
                    sample_data: Any = None) -> Source:
        """The model as a Source again: the checkpoint, or the user's model kept in (or named by) the folder
        with the sample data it was converted with."""
        if self.is_zoo:
            from ._source_zoo import ZooSource

            return ZooSource(self.name, self.framework, self.root.parents[1], data_dir)
        from ._source_user import reopen_user_source

        info = self.info()
        return reopen_user_source(self.root, info, _source_model(self.root, info), _sample(info, sample_data),
                                  custom_objects)


def _source_model(root: Path, info: UserModelInfo) -> str | Path:
    """What open_handle takes to rebuild a user's model: the copy kept in the folder, or its torch factory."""
    if info.source == "onnx":
        path = root / "source_model.onnx"
    elif info.source == "keras":
        path = next((root / f for f in KERAS_FILES if (root / f).exists()), root / KERAS_FILES[0])
    else:
        module = info.source_path.partition(":")[0]
        if ":" not in info.source_path:
            raise UserModelError(f"{info.name} was converted from a PyTorch module given in Python "
                                 f"({info.source_path}), which cannot be rebuilt: convert it again to verify it")
        if module.split(".")[0] in getattr(sys, "stdlib_module_names", ()) or module == "builtins":
            raise UserModelError(f"{root / USER_MODEL_JSON} names the factory {info.source_path!r} from Python's "
                                 f"standard library, which is not a model: refusing to call it")
        return info.source_path
    if not path.exists():
        raise ModelFileNotFoundError(f"{root} has no {path.name} (the source model as given): convert the model again")
    return path


def _sample(info: UserModelInfo, sample_data: Any) -> Any:
    if sample_data is not None:
        return sample_data
    if info.sample_data == "sample_data":  # arrays given in Python: not kept
        raise SampleDataError(f"{info.name} was converted with sample data given as arrays in Python: pass "
                              f"them again (sample_data=) or convert the model again")
    if not Path(info.sample_data).exists():
        raise ModelFileNotFoundError(f"the sample data {info.name} was converted with, {info.sample_data}, is "
                                     f"gone: put it back or convert the model again")
    return info.sample_data


def _zoo_folders(artifacts: Path, names: Optional[list[str]], frameworks: Optional[set[str]]) -> list[ModelFolder]:
    found = []
    for name in training_order(names):
        for framework in Framework:
            root = artifacts / name / framework.value
            if (frameworks is None or framework.value in frameworks) and (root / CHECKPOINT_META).is_file():
                found.append(ModelFolder(name, framework.value, root, SourceKind.ZOO))
    return found


def _user_folders(artifacts: Path, names: Optional[set[str]], frameworks: Optional[set[str]]) -> list[ModelFolder]:
    found = []
    for path in sorted(artifacts.glob(f"*/*/{USER_MODEL_JSON}")):
        root = path.parent
        if root.name not in SOURCES or root.parent.name.startswith(".") or root.parent.name in model_names():
            continue
        if (names is not None and root.parent.name not in names) or (frameworks and root.name not in frameworks):
            continue
        try:
            info = read_info(root)
        except UserModelError:
            info = None  # an unreadable user_model.json: not a model folder (verify says so when asked by name)
        if info is not None:
            found.append(ModelFolder(root.parent.name, root.name, root, SourceKind(info.source)))
    return found


def find_models(artifacts: Path | str, names: Optional[Iterable[str]] = None,
                frameworks: Optional[Iterable[str]] = None) -> list[ModelFolder]:
    """Every model under `artifacts` (or the named ones): reference models in training order, then users'
    models by name. A name that is neither is an UnknownModelError listing both kinds."""
    artifacts = Path(artifacts)
    wanted_frameworks = None if not frameworks else {getattr(f, "value", f) for f in frameworks}
    if not names:
        return _zoo_folders(artifacts, None, wanted_frameworks) + _user_folders(artifacts, None, wanted_frameworks)
    names = list(dict.fromkeys(names))
    known = set(model_names())
    user_names = {n for n in names if n not in known}
    user = _user_folders(artifacts, user_names, wanted_frameworks) if user_names else []
    missing = user_names - {f.name for f in user}
    if missing:
        mine = sorted({f.name for f in _user_folders(artifacts, None, None)})
        raise UnknownModelError(sorted(missing)[0], sorted(known), user_models=mine, artifacts=str(artifacts))
    return _zoo_folders(artifacts, [n for n in names if n in known], wanted_frameworks) + user
