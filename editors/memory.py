"""Will a training editor fit in memory? An estimate made before training, not an OOM kill halfway.

Training a parameter with AdamW needs, besides the weight itself (already loaded), a snapshot
for the exact revert, its gradient and Adam's two moments: four more copies. Activations come
on top, so the estimate is a lower bound; it is compared with the memory available now
(`torch.cuda.mem_get_info` on a GPU, else psutil or /proc/meminfo's MemAvailable).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import torch

COPIES_PER_TRAINED_PARAMETER = 4  # revert snapshot, gradient, Adam's first and second moment
MEMINFO = Path("/proc/meminfo")


def available_memory(device: torch.device) -> int | None:
    """Bytes free for new tensors on `device` now; None when this system does not say."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:
        pass
    try:
        for line in MEMINFO.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def training_bytes(parameters: Iterable[torch.nn.Parameter], copies: int = COPIES_PER_TRAINED_PARAMETER) -> int:
    """Memory that training `parameters` adds: `copies` of each, at its own element size."""
    return sum(copies * p.numel() * p.element_size() for p in parameters)


def size_text(count: int) -> str:
    """Bytes for messages: MiB below a GiB, else GiB."""
    return f"{count / 2**20:.1f} MiB" if count < 2**30 else f"{count / 2**30:.2f} GiB"
