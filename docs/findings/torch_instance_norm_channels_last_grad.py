"""PyTorch 2.13 on the CPU: F.instance_norm's gradient is wrong, by up to twice its size,
when the batch holds one image and the upstream gradient has channels-last strides.

Run: python docs/findings/torch_instance_norm_channels_last_grad.py   (needs torch)

How it happens in practice: NHWC code (minires', or anyone's) calls
F.instance_norm(x_nhwc.permute(0, 3, 1, 2)) and permutes the result back; autograd then hands
instance_norm's backward a gradient with channels-last strides. With a batch of 2 or more,
or a contiguous gradient, the result is right; F.batch_norm, which instance_norm calls on
the (1, N*C, H, W) reshape, is right with either layout. Each result is compared with
central differences of PyTorch's own forward pass.
"""

import numpy as np
import torch
import torch.nn.functional as F


def gradients(shape, memory_format, seed=1):
    """(autograd's dx, central differences' dx) for sum(instance_norm(x) * g)."""
    rng = np.random.default_rng(seed)
    x = torch.tensor(rng.standard_normal(shape))
    g = torch.tensor(rng.standard_normal(shape))
    xt = x.clone().requires_grad_(True)
    (dx,) = torch.autograd.grad(F.instance_norm(xt, eps=1e-3), xt,
                                g.clone().to(memory_format=memory_format))
    numeric = torch.zeros_like(x)
    for index in np.ndindex(*shape):
        step = torch.zeros_like(x)
        step[index] = 1e-6
        up = (F.instance_norm(x + step, eps=1e-3) * g).sum()
        down = (F.instance_norm(x - step, eps=1e-3) * g).sum()
        numeric[index] = (up - down) / 2e-6
    return dx, numeric


print(f"torch {torch.__version__}")
for shape in [(1, 2, 1, 2), (1, 2, 2, 2), (1, 3, 4, 5), (2, 2, 2, 2)]:
    for name, fmt in (("contiguous", torch.contiguous_format), ("channels-last", torch.channels_last)):
        dx, numeric = gradients(shape, fmt)
        error = ((dx - numeric).abs().max() / numeric.abs().max()).item()
        print(f"x {shape}, upstream gradient {name:>13}: relative error {error:.1e}"
              f"{'   <- wrong' if error > 1e-6 else ''}")
