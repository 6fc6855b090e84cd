"""The stream protocol of :mod:`unroll.evaluate.stream` on the PyTorch engine (no gradients,
eval mode, optional bf16 autocast; the loss is always summed in float64)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from unroll.evaluate.stream import metrics, windows
from unroll.models.device import resolve_precision


@torch.no_grad()
def evaluate_torch(
    model: torch.nn.Module, ids: np.ndarray, batch_size: int = 10, bptt: int = 35, precision: str = "fp32"
) -> dict[str, float]:
    """:func:`unroll.evaluate.evaluate` for a torch language model."""
    stream = windows(ids, batch_size, bptt)
    device = next(model.parameters()).device
    bf16 = resolve_precision(precision, device) == "bf16"
    was_training = model.training
    model.eval()
    total = torch.zeros((), dtype=torch.float64, device=device)
    count = 0
    state = None
    try:
        for x, y in stream:
            x = torch.from_numpy(np.ascontiguousarray(x)).to(device)
            y = torch.from_numpy(np.ascontiguousarray(y)).to(device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                logits, state = model(x, state)
            if logits.dtype in (torch.bfloat16, torch.float16):
                logits = logits.float()  # the loss in fp32 (or the model's float64)
            total += F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1), reduction="sum")
            count += y.numel()
    finally:
        model.train(was_training)
    return metrics(total.item(), count)
