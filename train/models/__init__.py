"""The model zoo: one file per model. Each file registers exactly one ModelSpec named like the file
and (from the models issue on) its Keras and PyTorch builders, importing TF / torch lazily.
Adding a model is adding a file here; the registry discovers it."""
