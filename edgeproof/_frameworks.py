"""Lazy imports of the heavy frameworks, with the environment they need set first."""
from __future__ import annotations

import os


def import_tensorflow():
    """TensorFlow with Keras 2 (tf-keras) selected: TF 2.19 otherwise binds tf.keras to Keras 3."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # tensorflowjs imports tensorflow_decision_forests, which imports IPython to greet the user
    # whenever stdout is not a terminal; IPython is not part of the stack.
    os.environ.setdefault("TFDF_DISABLE_WELCOME_MESSAGE", "1")
    import tensorflow as tf

    return tf


def import_tf_keras():
    import_tensorflow()
    import tf_keras

    return tf_keras


def import_tensorflowjs():
    import_tensorflow()
    import tensorflowjs

    return tensorflowjs
