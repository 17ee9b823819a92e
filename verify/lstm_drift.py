"""How far TFLite's fused LSTM kernel drifts from Keras with sequence length (the imdb_lstm budget note).

    python -m edgeproof.verify.lstm_drift [ARTIFACTS]      # default: artifacts

Runs the Keras imdb_lstm, a float64 numpy LSTM with the same weights and the fp32 .tflite on the
spec's probes truncated to the last k tokens, and prints the max |difference| per length.
"""
from __future__ import annotations

import sys

import numpy as np


def main(artifacts: str = "artifacts") -> None:
    from edgeproof import get_spec
    from edgeproof.runtime import load_interpreter
    from edgeproof.train import load_checkpoint, model_dir, predictor_for

    spec = get_spec("imdb_lstm")
    root = model_dir(artifacts, "imdb_lstm", "keras")
    checkpoint = load_checkpoint(root / "checkpoint")
    keras_predict = predictor_for(checkpoint)
    net = checkpoint.model
    emb = net.layers[1].get_weights()[0].astype(np.float64)
    kernel, recurrent, bias = (w.astype(np.float64) for w in net.layers[2].get_weights())
    dense_w, dense_b = (w.astype(np.float64) for w in net.layers[3].get_weights())

    def sigmoid(x):
        return 1.0 / (1.0 + np.exp(-x))

    def float64_lstm(tokens: np.ndarray) -> np.ndarray:
        x = emb[tokens]
        h = np.zeros((len(tokens), kernel.shape[1] // 4))
        c = np.zeros_like(h)
        for t in range(x.shape[1]):
            i, f, g, o = np.split(x[:, t] @ kernel + h @ recurrent + bias, 4, axis=1)
            c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
            h = sigmoid(o) * np.tanh(c)
        return sigmoid(h @ dense_w + dense_b)[:, 0]

    _, interp = load_interpreter(str(root / "tflite" / "fp32.tflite"), "ai_edge_litert")
    runner = interp.get_signature_runner()
    probes = spec.probe_inputs()["tokens"]
    print("| last k tokens kept | max abs(Keras - float64) | max abs(TFLite fp32 - float64) |")
    print("|---|---|---|")
    for k in (25, 50, 100, 150, 175, 200):
        tokens = np.zeros_like(probes)
        tokens[:, -k:] = probes[:, -k:]
        exact = float64_lstm(tokens)
        keras = keras_predict({"tokens": tokens})[:, 0]
        lite = np.array([next(iter(runner(tokens=row[None]).values()))[0, 0] for row in tokens])
        print(f"| {k} | {np.abs(keras - exact).max():.2g} | {np.abs(lite - exact).max():.2g} |")


if __name__ == "__main__":
    main(*sys.argv[1:])
