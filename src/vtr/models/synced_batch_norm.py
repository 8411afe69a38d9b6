"""BatchNorm over the global batch when training on several processes, on any device.

``torch.nn.SyncBatchNorm`` does this on GPUs only; on CPU (Gloo) it raises. Without it, each process would
normalise by the statistics of its own shard of the batch, and training on two processes would no longer give
the weights of one process with the same global batch (``tests/test_synced_batch_norm.py``).
"""

from __future__ import annotations

import warnings

import torch
import torch.distributed as dist
from torch import Tensor, nn


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


class SyncedBatchNorm2d(nn.BatchNorm2d):
    """``nn.BatchNorm2d`` whose training statistics are those of the batch summed over every process.

    In evaluation, or in one process, it is ``nn.BatchNorm2d`` (same parameters, buffers and state dict keys).
    Training on several processes, each one sums its per-channel count, sum and sum of squares with the
    others (a differentiable all-reduce, so the gradient flows through the statistics as in one process),
    normalises by the global mean and biased variance, and moves its running statistics by the same amounts.
    """

    def forward(self, x: Tensor) -> Tensor:
        if not (self.training and _distributed()):
            return super().forward(x)
        from torch.distributed.nn.functional import all_reduce

        channels = x.size(1)
        values = x.float()
        count = torch.full((1,), values.numel() / channels, dtype=torch.float32, device=x.device)
        local = torch.cat([values.sum((0, 2, 3)), values.square().sum((0, 2, 3)), count])  # [2C + 1]
        with warnings.catch_warnings():  # deprecated for a private successor; still torch's differentiable one
            warnings.simplefilter("ignore", FutureWarning)
            total = all_reduce(local)  # summed over processes; its backward sums the gradients the same way
        n = total[-1]
        mean = total[:channels] / n
        var = (total[channels : 2 * channels] / n - mean.square()).clamp(min=0)
        if self.track_running_stats and self.running_mean is not None and self.running_var is not None:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                momentum = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                unbiased = var * (n / (n - 1).clamp(min=1))
                self.running_mean.lerp_(mean.to(self.running_mean.dtype), momentum)
                self.running_var.lerp_(unbiased.to(self.running_var.dtype), momentum)
        scale = torch.rsqrt(var + self.eps)
        if self.affine:
            shift = self.bias - mean * scale * self.weight
            scale = scale * self.weight
        else:
            shift = -mean * scale
        return (values * scale[:, None, None] + shift[:, None, None]).to(x.dtype)
