"""Keras (tf-keras) training: model.fit for supervised tasks, a GradientTape loop for the GAN.

One GPU or the CPU use the default strategy; several GPUs use tf.distribute.MirroredStrategy."""
from __future__ import annotations

import sys
from typing import Any

import numpy as np

from edgeproof import _log
from edgeproof._frameworks import import_tensorflow, import_tf_keras
from edgeproof._spec import ModelSpec, Profile, Task

from ._taskdata import TaskData


def setup_device(device: str, mixed_precision: bool, seed: int):
    """Pick devices, seed everything, and return the distribution strategy to build models under."""
    tf, keras = import_tensorflow(), import_tf_keras()
    gpus = tf.config.list_physical_devices("GPU")
    if device == "cpu" and gpus:
        tf.config.set_visible_devices([], "GPU")
        gpus = []
    if device == "cuda" and not gpus:
        raise RuntimeError("--device cuda: TensorFlow sees no GPU; use --device cpu or auto")
    if mixed_precision:
        if not gpus:
            raise RuntimeError("--mixed-precision needs a GPU; TensorFlow sees none")
        keras.mixed_precision.set_global_policy("mixed_float16")
    keras.utils.set_random_seed(seed)
    if not gpus:
        tf.config.experimental.enable_op_determinism()
    return tf.distribute.MirroredStrategy() if len(gpus) > 1 else tf.distribute.get_strategy()


def build(spec: ModelSpec, strategy, architecture: dict[str, Any]):
    with strategy.scope():
        return spec.builder("keras")(**architecture)


class _EpochLog:
    """A Keras callback that records one dict per epoch."""

    def __new__(cls, history: list[dict]):
        keras = import_tf_keras()

        class Log(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                history.append({"epoch": epoch + 1, **{k: float(v) for k, v in (logs or {}).items()}})

        return Log()


def fit(spec: ModelSpec, model, data: TaskData, profile: Profile, epochs: int, strategy) -> list[dict]:
    """Train in place; returns per-epoch metrics."""
    keras = import_tf_keras()
    if spec.task is Task.GENERATION:
        return _fit_gan(model, data, profile, epochs, strategy)
    history: list[dict] = []
    # Keras' own epoch lines only with -v (the underlying tool's log); edgeproof prints its own result line
    verbose = (1 if sys.stdout.isatty() else 2) if _log.level() >= _log.VERBOSE else 0
    with strategy.scope():
        if spec.task is Task.REGRESSION:
            optimizer, loss, metrics = keras.optimizers.SGD(profile.learning_rate), "mse", []
        elif spec.task is Task.CLASSIFICATION:
            optimizer, loss, metrics = keras.optimizers.Adam(profile.learning_rate), "sparse_categorical_crossentropy", ["accuracy"]
        elif spec.task is Task.BINARY_CLASSIFICATION:
            optimizer, loss, metrics = keras.optimizers.Adam(profile.learning_rate), "binary_crossentropy", ["accuracy"]
        elif spec.task is Task.TRANSLATION:
            optimizer, loss, metrics = keras.optimizers.Adam(profile.learning_rate), masked_sequence_loss, []
        else:
            raise ValueError(f"no Keras recipe for task {spec.task}")
        model.compile(optimizer=optimizer, loss=loss, metrics=metrics)
    if spec.task is Task.REGRESSION:
        return _fit_many_small_epochs(model, data, profile, epochs)
    model.fit(data.x_train, data.y_train, batch_size=profile.batch_size, epochs=epochs,
              validation_data=(data.x_test, data.y_test), verbose=verbose, shuffle=True,
              callbacks=[_EpochLog(history)])
    return history


def masked_sequence_loss(y_true, logits):
    """Cross-entropy over the non-padding target tokens of each sentence, averaged per sentence
    (the PyTorch trainer computes the same quantity)."""
    tf, keras = import_tensorflow(), import_tf_keras()
    mask = tf.cast(tf.not_equal(y_true, 0), logits.dtype)
    ce = keras.losses.sparse_categorical_crossentropy(y_true, logits, from_logits=True)
    return tf.reduce_sum(ce * mask, axis=-1) / tf.maximum(tf.reduce_sum(mask, axis=-1), 1.0)


def _fit_many_small_epochs(model, data: TaskData, profile: Profile, epochs: int) -> list[dict]:
    """Thousands of one-batch epochs (linreg): model.fit's per-epoch overhead would dominate, so the
    epochs run in chunks of one fit-epoch each (same SGD steps, same order) and are logged per chunk."""
    tf = import_tensorflow()
    n = data.n_train
    if profile.batch_size < n:
        raise ValueError("chunked epochs assume full-batch training (batch_size >= training set size)")
    chunk = max(1, epochs // 100)
    batch = (dict(data.x_train), data.y_train)
    dataset = tf.data.Dataset.from_tensors(batch).repeat()
    history: list[dict] = []
    done = 0
    while done < epochs:
        steps = min(chunk, epochs - done)
        logs = model.fit(dataset, epochs=1, steps_per_epoch=steps, verbose=0).history
        done += steps
        val = model.evaluate(data.x_test, data.y_test, verbose=0)
        history.append({"epoch": done, "loss": float(logs["loss"][-1]), "val_loss": float(val)})
        if done % max(1, epochs // 10) < chunk or done == epochs:
            _log.detail(f"epoch {done}/{epochs}: loss {history[-1]['loss']:.4f}, val_loss {val:.4f}")
    return history


def _fit_gan(models, data: TaskData, profile: Profile, epochs: int, strategy) -> list[dict]:
    from tqdm.auto import tqdm

    tf, keras = import_tensorflow(), import_tf_keras()
    generator, discriminator = models
    images = data.x_train["image"]
    latent = generator.input_shape[-1]
    with strategy.scope():
        g_opt = keras.optimizers.Adam(profile.learning_rate, beta_1=0.5)
        d_opt = keras.optimizers.Adam(profile.learning_rate, beta_1=0.5)
    bce = keras.losses.BinaryCrossentropy()

    @tf.function
    def step(real):
        n = tf.shape(real)[0]
        z = tf.random.normal((n, latent))
        with tf.GradientTape() as d_tape:
            fake = generator(z, training=True)
            d_loss = bce(tf.ones((n, 1)), discriminator(real, training=True)) + \
                bce(tf.zeros((n, 1)), discriminator(fake, training=True))
        d_opt.apply_gradients(zip(d_tape.gradient(d_loss, discriminator.trainable_variables),
                                  discriminator.trainable_variables))
        with tf.GradientTape() as g_tape:
            g_loss = bce(tf.ones((n, 1)), discriminator(generator(z, training=True), training=True))
        g_opt.apply_gradients(zip(g_tape.gradient(g_loss, generator.trainable_variables),
                                  generator.trainable_variables))
        return d_loss, g_loss

    rng = np.random.default_rng(0)
    history = []
    for epoch in range(epochs):
        order = rng.permutation(len(images))
        d_sum = g_sum = 0.0
        batches = range(0, len(order) - profile.batch_size + 1, profile.batch_size)
        for i in tqdm(batches, desc=f"epoch {epoch + 1}/{epochs}", leave=False, mininterval=2,
                      disable=_log.level() < _log.VERBOSE):
            d_loss, g_loss = step(tf.constant(images[order[i:i + profile.batch_size]]))
            d_sum, g_sum = d_sum + float(d_loss), g_sum + float(g_loss)
        history.append({"epoch": epoch + 1, "d_loss": d_sum / len(batches), "g_loss": g_sum / len(batches)})
        _log.detail(f"epoch {epoch + 1}/{epochs}: d_loss {history[-1]['d_loss']:.4f}, g_loss {history[-1]['g_loss']:.4f}",
              flush=True)
    return history


def predictor(spec: ModelSpec, model):
    """A numpy predict function over canonical-layout inputs (the generator for the GAN)."""
    net = model[0] if isinstance(model, tuple) else model

    def predict(inputs: dict[str, np.ndarray]) -> np.ndarray:
        names = [t.name for t in spec.inputs]
        args = [inputs[n] for n in names]
        return np.asarray(net(args if len(args) > 1 else args[0], training=False))

    return predict


def count_trainable(model) -> int:
    models = model if isinstance(model, tuple) else (model,)
    return int(sum(np.prod(w.shape) for m in models for w in m.trainable_weights))
