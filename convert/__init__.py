"""edgeproof.convert: Keras -> TFLite / TF.js, PyTorch -> ONNX -> TensorFlow -> TFLite / TF.js."""
