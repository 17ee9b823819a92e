"""edgeproof.train: datasets, the reference models (Keras + PyTorch) and their training loops.

Model definitions live in edgeproof.train.models (one file per model). TensorFlow and PyTorch are
imported only inside the functions that need them, so importing this package stays light."""
from ._api import TrainResult, find_judge, model_dir, predictor_for, train
from ._checkpoint import Checkpoint, CheckpointError, load_checkpoint, save_checkpoint
from ._evaluate import evaluate, greedy_decode

__all__ = ["Checkpoint", "CheckpointError", "TrainResult", "evaluate", "find_judge", "greedy_decode",
           "load_checkpoint", "model_dir", "predictor_for", "save_checkpoint", "train"]
