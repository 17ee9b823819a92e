"""Hugging Face transformers models as a user deploys them: an encoder with mean pooling (sentence-transformers
style), the logits of a *ForXxx head, or an encoder's last hidden state, behind a plain forward() whose parameters
are named like the sample arrays. Models are built from shrunk configs with seeded random weights, eager attention
unless the entry asks for another. torch and transformers are imported lazily."""
from __future__ import annotations

from typing import Any


def seeded(cls_name: str, config, seed: int = 0):
    """transformers.<cls_name>(config), seeded, eval mode, no grad."""
    import torch
    import transformers

    from ._export import torch_eval

    torch.manual_seed(seed)
    return torch_eval(getattr(transformers, cls_name)(config))


def config(cls_name: str, **kwargs: Any):
    import transformers

    return getattr(transformers, cls_name)(**kwargs)


def _nn():
    from torch import nn

    return nn


def mean_pool(hidden, mask, normalize: bool):
    """sentence-transformers' Pooling(mean) [+ Normalize]: the average of the unmasked token vectors."""
    import torch

    m = mask.unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * m).sum(1) / torch.clamp(m.sum(1), min=1e-9)
    return torch.nn.functional.normalize(pooled, p=2.0, dim=1) if normalize else pooled


def MeanPooled(encoder, normalize: bool = True, with_token_types: bool = False):
    """forward(input_ids, attention_mask[, token_type_ids]) -> the pooled sentence embedding."""
    nn = _nn()

    class _MeanPooled(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = encoder

        def forward(self, input_ids, attention_mask):
            hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            return mean_pool(hidden, attention_mask, normalize)

    class _MeanPooledTT(_MeanPooled):
        def forward(self, input_ids, attention_mask, token_type_ids):
            hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask,
                                  token_type_ids=token_type_ids).last_hidden_state
            return mean_pool(hidden, attention_mask, normalize)

    return (_MeanPooledTT if with_token_types else _MeanPooled)().eval()


def TextLogits(model, with_token_types: bool = False):
    """forward(input_ids, attention_mask[, token_type_ids]) -> model(...).logits."""
    nn = _nn()

    class _TextLogits(nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask):
            return self.model(input_ids=input_ids, attention_mask=attention_mask).logits

    class _TextLogitsTT(_TextLogits):
        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids).logits

    return (_TextLogitsTT if with_token_types else _TextLogits)().eval()


def TextHidden(model):
    """forward(input_ids, attention_mask) -> last_hidden_state (an encoder's output as a seq2seq decoder reads it)."""
    nn = _nn()

    class _TextHidden(nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask):
            return self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    return _TextHidden().eval()


def ImageLogits(model, field: str = "logits"):
    """forward(pixel_values) -> model(pixel_values).<field>."""
    nn = _nn()

    class _ImageLogits(nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, pixel_values):
            return getattr(self.model(pixel_values=pixel_values), field)

    return _ImageLogits().eval()
