"""PyTorch training: one loop for supervised tasks, one for the GAN. Several processes use
torch.distributed DDP as launched by `torchrun` (gloo on CPU, nccl on CUDA); nothing home-made."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from edgeproof import _log
from edgeproof._spec import Layout, ModelSpec, Profile, Task

from ._taskdata import TaskData


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    device: Any = "cpu"

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_device(device: str, mixed_precision: bool, seed: int) -> Dist:
    import torch
    import torch.distributed as dist

    cuda = torch.cuda.is_available()
    if device == "cuda" and not cuda:
        raise RuntimeError("--device cuda: PyTorch sees no CUDA device; use --device cpu or auto")
    use_cuda = cuda and device != "cpu"
    if mixed_precision and not use_cuda:
        raise RuntimeError("--mixed-precision needs a CUDA device; PyTorch sees none")
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    local = int(os.environ.get("LOCAL_RANK", "0"))
    dev = torch.device(f"cuda:{local}" if use_cuda else "cpu")
    if use_cuda:
        torch.cuda.set_device(dev)
    torch.manual_seed(seed)
    np.random.seed(seed)
    if not use_cuda:
        torch.use_deterministic_algorithms(True)
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
    return Dist(rank, world, dev)


def to_framework_layout(spec: ModelSpec, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Canonical (NHWC) arrays -> what the torch model takes (NCHW)."""
    if spec.torch_layout is not Layout.NCHW:
        return inputs
    return {t.name: np.ascontiguousarray(inputs[t.name].transpose(0, 3, 1, 2)) if t.layout is Layout.NHWC
            else inputs[t.name] for t in spec.inputs}


def _loss(spec: ModelSpec, model, batch: dict, target):
    import torch.nn.functional as F

    args = [batch[t.name] for t in spec.inputs]
    if spec.task is Task.REGRESSION:
        return F.mse_loss(model(*args), target)
    if spec.task is Task.CLASSIFICATION:
        return F.cross_entropy(model.logits(*args), target)
    if spec.task is Task.BINARY_CLASSIFICATION:
        return F.binary_cross_entropy_with_logits(model.logits(*args)[:, 0], target)
    if spec.task is Task.TRANSLATION:  # per-sentence mean over non-padding tokens, as in Keras
        logits = model(*args)
        ce = F.cross_entropy(logits.transpose(1, 2), target, reduction="none")
        mask = (target != 0).to(ce.dtype)
        return ((ce * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).mean()
    raise ValueError(f"no PyTorch recipe for task {spec.task}")


def _mean_over_ranks(value: float, dist_info: Dist) -> float:
    if dist_info.world == 1:
        return value
    import torch
    import torch.distributed as dist

    t = torch.tensor([value], dtype=torch.float64)
    dist.all_reduce(t)
    return float(t.item()) / dist_info.world


def _validation_loss(spec: ModelSpec, forward, data: TaskData, device, batch_size: int = 256) -> float:
    import torch

    x_test = to_framework_layout(spec, data.x_test)
    total, n = 0.0, data.n_test
    with torch.no_grad():
        for i in range(0, n, batch_size):
            batch = {k: torch.from_numpy(v[i:i + batch_size]).to(device) for k, v in x_test.items()}
            y = torch.from_numpy(data.y_test[i:i + batch_size]).to(device)
            total += float(_loss(spec, forward, batch, y)) * len(y)
    return total / n


def fit(spec: ModelSpec, model, data: TaskData, profile: Profile, epochs: int, dist_info: Dist,
        mixed_precision: bool = False) -> list[dict]:
    """Train in place; returns per-epoch metrics (identical on every rank)."""
    if spec.task is Task.GENERATION:
        return _fit_gan(model, data, profile, epochs, dist_info)
    import torch
    from torch.nn.parallel import DistributedDataParallel as DDP
    from tqdm.auto import tqdm

    names = [t.name for t in spec.inputs]
    loader, sampler = _train_loader(spec, data, profile, dist_info)
    model.to(dist_info.device)
    wrapped = DDP(model) if dist_info.world > 1 else model
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(trainable, lr=profile.learning_rate) if spec.task is Task.REGRESSION \
        else torch.optim.Adam(trainable, lr=profile.learning_rate)
    use_amp = mixed_precision and dist_info.device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    quiet = spec.task is Task.REGRESSION or not dist_info.main

    class _Forward:  # lets _loss call .logits on the DDP-wrapped module's underlying model
        def __call__(self, *a):
            return wrapped(*a)

        def logits(self, *a):
            return wrapped.module.logits(*a) if dist_info.world > 1 else model.logits(*a)

    forward = _Forward()
    history = []
    for epoch in range(epochs):
        if sampler is not None:
            sampler.set_epoch(epoch)
        model.train()
        total, count = 0.0, 0
        for *xs, y in tqdm(loader, desc=f"epoch {epoch + 1}/{epochs}", leave=False, disable=quiet or _log.level() < _log.VERBOSE,
                         mininterval=2):
            batch = {n: x.to(dist_info.device) for n, x in zip(names, xs)}
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(device_type="cuda", dtype=torch.float16, enabled=use_amp):
                loss = _loss(spec, forward, batch, y.to(dist_info.device))
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            total, count = total + float(loss.detach()) * len(y), count + len(y)
        row = {"epoch": epoch + 1, "loss": _mean_over_ranks(total / count, dist_info)}
        if dist_info.main:
            model.eval()
            row["val_loss"] = _validation_loss(spec, forward, data, dist_info.device)
        history.append(row)
        every = max(1, epochs // 10) if spec.task is Task.REGRESSION else 1
        if dist_info.main and ((epoch + 1) % every == 0 or epoch + 1 == epochs):
            _log.detail(f"epoch {epoch + 1}/{epochs}: " + ", ".join(f"{k} {v:.4f}" for k, v in row.items() if k != "epoch"),
                  flush=True)
    model.eval()
    return history


def _train_loader(spec: ModelSpec, data: TaskData, profile: Profile, dist_info: Dist):
    """The shuffled training batches of this rank (seeded), and the distributed sampler when there are ranks."""
    import torch
    from torch.utils.data import DataLoader, TensorDataset
    from torch.utils.data.distributed import DistributedSampler

    x_train = to_framework_layout(spec, data.x_train)
    tensors = [torch.from_numpy(x_train[t.name]) for t in spec.inputs] + [torch.from_numpy(data.y_train)]
    dataset = TensorDataset(*tensors)
    per_rank_batch = max(1, profile.batch_size // dist_info.world)
    generator = torch.Generator().manual_seed(0)
    sampler = DistributedSampler(dataset, num_replicas=dist_info.world, rank=dist_info.rank, shuffle=True, seed=0) \
        if dist_info.world > 1 else None
    loader = DataLoader(dataset, batch_size=per_rank_batch, shuffle=sampler is None, sampler=sampler,
                        generator=generator if sampler is None else None)
    return loader, sampler


def _fit_gan(models, data: TaskData, profile: Profile, epochs: int, dist_info: Dist) -> list[dict]:
    import torch
    import torch.nn.functional as F
    from torch.nn.parallel import DistributedDataParallel as DDP
    from tqdm.auto import tqdm

    generator, discriminator = (m.to(dist_info.device) for m in models)
    g, d = (DDP(generator), DDP(discriminator)) if dist_info.world > 1 else (generator, discriminator)
    d_logits = (lambda x: d.module.logits(x)) if dist_info.world > 1 else discriminator.logits
    images = torch.from_numpy(data.x_train["image"])
    g_opt = torch.optim.Adam(generator.parameters(), lr=profile.learning_rate, betas=(0.5, 0.999))
    d_opt = torch.optim.Adam(discriminator.parameters(), lr=profile.learning_rate, betas=(0.5, 0.999))
    latent = generator.net[0].in_features
    rng = torch.Generator().manual_seed(dist_info.rank)
    per_rank = max(1, profile.batch_size // dist_info.world)
    history = []
    for epoch in range(epochs):
        generator.train(), discriminator.train()
        order = torch.randperm(len(images), generator=torch.Generator().manual_seed(epoch))
        order = order[dist_info.rank::dist_info.world]
        d_sum = g_sum = 0.0
        batches = range(0, len(order) - per_rank + 1, per_rank)
        for i in tqdm(batches, desc=f"epoch {epoch + 1}/{epochs}", leave=False,
                      disable=not dist_info.main or _log.level() < _log.VERBOSE, mininterval=2):
            real = images[order[i:i + per_rank]].to(dist_info.device)
            n = len(real)
            ones, zeros = torch.ones(n, 1, device=dist_info.device), torch.zeros(n, 1, device=dist_info.device)
            z = torch.randn(n, latent, generator=rng).to(dist_info.device)
            fake = g(z)
            d_loss = F.binary_cross_entropy_with_logits(d_logits(real), ones) + \
                F.binary_cross_entropy_with_logits(d_logits(fake.detach()), zeros)
            d_opt.zero_grad(set_to_none=True)
            d_loss.backward()
            d_opt.step()
            g_loss = F.binary_cross_entropy_with_logits(d_logits(fake), ones)
            g_opt.zero_grad(set_to_none=True)
            g_loss.backward()
            g_opt.step()
            d_sum, g_sum = d_sum + float(d_loss.detach()), g_sum + float(g_loss.detach())
        row = {"epoch": epoch + 1, "d_loss": _mean_over_ranks(d_sum / len(batches), dist_info),
               "g_loss": _mean_over_ranks(g_sum / len(batches), dist_info)}
        history.append(row)
        if dist_info.main:
            _log.detail(f"epoch {epoch + 1}/{epochs}: d_loss {row['d_loss']:.4f}, g_loss {row['g_loss']:.4f}")
    generator.eval(), discriminator.eval()
    return history


def predictor(spec: ModelSpec, model, device: Optional[Any] = None, batch_size: int = 512):
    """A numpy predict function over canonical-layout inputs (the generator for the GAN)."""
    import torch

    net = model[0] if isinstance(model, tuple) else model
    net.eval()

    def predict(inputs: dict[str, np.ndarray]) -> np.ndarray:
        arrays = to_framework_layout(spec, inputs)
        dev = next(net.parameters()).device
        with torch.no_grad():
            args = [torch.from_numpy(np.ascontiguousarray(arrays[t.name])).to(dev) for t in spec.inputs]
            return net(*args).float().cpu().numpy()

    return predict


def count_trainable(model) -> int:
    models = model if isinstance(model, tuple) else (model,)
    return int(sum(p.numel() for m in models for p in m.parameters() if p.requires_grad))
