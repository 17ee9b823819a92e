"""The machine's limits, measured: numpy sgemm GFLOP/s on 1 and 2 threads, memory bandwidth
(a large array copy), and what they imply for an artifact (its roofline time and the fraction of
it reached)."""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any, Optional, Sequence

import numpy as np


@dataclass
class MachineLimits:
    sgemm_gflops: dict[int, float]  # threads -> best measured float32 GEMM rate
    sgemm_size: int
    int8_gops: dict[int, Optional[float]]  # threads -> best int8 GEMM rate (torch._int_mm), None if unavailable
    copy_gbps: float  # bytes read + written per second by one large copy, best of the repeats
    copy_mib: int
    blas: str

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["sgemm_gflops"] = {str(k): v for k, v in self.sgemm_gflops.items()}
        d["int8_gops"] = {str(k): v for k, v in self.int8_gops.items()}
        return d

    def peak(self, threads: int, mode: str) -> Optional[float]:
        """The rate an artifact of `mode` can at best reach: int8 GEMM for int8 and dynamic-range
        (XNNPACK runs both on int8 dot products), float32 GEMM otherwise."""
        rates = self.int8_gops if mode in ("int8", "dynamic", "uint8") else self.sgemm_gflops
        # t threads can always do what fewer threads do: a contended 2-thread measurement below the
        # 1-thread one does not lower the limit
        known = [v for t, v in rates.items() if t <= threads and v]
        return max(known) if known else None


def _blas_name() -> str:
    try:
        from threadpoolctl import threadpool_info

        infos = [i for i in threadpool_info() if i.get("user_api") == "blas"]
        return ", ".join(f"{i.get('internal_api')} {i.get('version') or ''} ({i.get('architecture') or '?'})".strip()
                         for i in infos) or "unknown"
    except ImportError:
        return "unknown (threadpoolctl missing)"


def _best_seconds(fn, repeats: int, budget_s: float) -> float:
    """The fastest of at least `repeats` calls, going on until `budget_s` has passed: on a shared
    machine the best call is the one that ran in a quiet moment, which is what a peak is."""
    fn()  # warm-up: thread pool, pages
    best, start, n = float("inf"), time.perf_counter(), 0
    while n < repeats or time.perf_counter() - start < budget_s:
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
        n += 1
    return best


def sgemm_gflops(threads: int, n: int = 1024, repeats: int = 5, budget_s: float = 1.5) -> float:
    """Best float32 n x n x n matmul rate on `threads` BLAS threads, in GFLOP/s (2 n^3 per product)."""
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    out = np.empty((n, n), dtype=np.float32)
    with threadpool_limits(limits=threads, user_api="blas"):
        best = _best_seconds(lambda: np.matmul(a, b, out=out), repeats, budget_s)
    return 2 * n ** 3 / best / 1e9


def int8_gops(threads: int, n: int = 1024, repeats: int = 5, budget_s: float = 1.5) -> Optional[float]:
    """Best int8 x int8 -> int32 n x n x n matmul rate (torch._int_mm, oneDNN), in GOP/s; None when
    torch or the kernel is missing."""
    try:
        import torch

        before = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            a = torch.randint(-128, 127, (n, n), dtype=torch.int8)
            b = torch.randint(-128, 127, (n, n), dtype=torch.int8)
            best = _best_seconds(lambda: torch._int_mm(a, b), repeats, budget_s)
        finally:
            torch.set_num_threads(before)
        return round(2 * n ** 3 / best / 1e9, 2)
    except (ImportError, RuntimeError, AttributeError):
        return None


def copy_gbps(mib: int = 256, repeats: int = 5) -> float:
    """Memory bandwidth of one thread copying `mib` MiB (well past the caches): read + write bytes / s."""
    src = np.ones(mib * 2 ** 20 // 8, dtype=np.float64)
    dst = np.empty_like(src)
    best = _best_seconds(lambda: np.copyto(dst, src), repeats, 0.5)
    return 2 * src.nbytes / best / 1e9


def measure_machine(threads: Sequence[int] = (1, 2), sgemm_size: int = 1024, copy_mib: int = 256) -> MachineLimits:
    return MachineLimits({t: round(sgemm_gflops(t, sgemm_size), 2) for t in threads}, sgemm_size,
                         {t: int8_gops(t, sgemm_size) for t in threads}, round(copy_gbps(copy_mib), 2), copy_mib,
                         _blas_name())


def compute_floor_ms(macs: Optional[int], gflops: Optional[float]) -> Optional[float]:
    """The time the arithmetic alone needs at the measured sgemm rate (2 FLOPs per MAC), in ms."""
    if not macs or not gflops:
        return None
    return 2 * macs / (gflops * 1e9) * 1e3


def stream_ms(weight_bytes: Optional[int], gbps: Optional[float]) -> Optional[float]:
    """The time to read the weights once from DRAM at the measured bandwidth, in ms."""
    if not weight_bytes or not gbps:
        return None
    return weight_bytes / (gbps * 1e9) * 1e3


def fraction_of_limit(measured_ms: Optional[float], limit_ms: Optional[float]) -> Optional[float]:
    """limit / measured: 1.0 would be the machine's peak; None when either is unknown."""
    if not measured_ms or not limit_ms:
        return None
    return limit_ms / measured_ms
