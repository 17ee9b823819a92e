"""edgeproof.train: datasets, the reference models (Keras + PyTorch) and their training loops.

Model definitions live in edgeproof.train.models (one file per model). TensorFlow and PyTorch are
imported only inside the functions that need them."""
