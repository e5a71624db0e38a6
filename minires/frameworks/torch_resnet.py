"""The seed's ResNet in PyTorch, built and trained the way minires does it, for comparisons.

minires' accuracy and speed are only meaningful next to a framework trained the same way:
same architecture, Glorot-uniform kernels and zero biases, Adam with Keras' settings
(lr 1e-3, betas 0.9/0.999, epsilon 1e-7), batch 64, mini-batches shuffled per epoch.
Every 'same' convolution of the seed's model has an odd kernel at stride 1, where Keras'
padding is symmetric, so PyTorch's ``padding=k // 2`` is exactly Keras' 'same' here.

PyTorch is an optional dependency (``minires[verify]``); it is imported when this module is.
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F


class ResidualBlock(nn.Module):
    """Conv 3x3 + ReLU -> Conv 3x3 -> MaxPool 2 ; skip: Conv 1x1 -> MaxPool 2 ; add ; ReLU."""

    def __init__(self, c_in: int, filters: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, filters, 3, padding=1)
        self.conv2 = nn.Conv2d(filters, filters, 3, padding=1)
        self.skip = nn.Conv2d(c_in, filters, 1)

    def forward(self, x):
        main = F.max_pool2d(self.conv2(F.relu(self.conv1(x))), 2)
        return F.relu(main + F.max_pool2d(self.skip(x), 2))


class SeedResNet(nn.Module):
    """The seed's model: 270,026 parameters at 32x32x3 input and 10 classes. Returns logits."""

    def __init__(self, input_shape=(32, 32, 3), num_classes: int = 10, filters: int = 64, blocks: int = 3,
                 dense_units: int = 128):
        super().__init__()
        h, w, c = input_shape
        self.stem = nn.Conv2d(c, filters, 3, padding=1)
        self.blocks = nn.ModuleList(ResidualBlock(filters, filters) for _ in range(blocks))
        side_h, side_w = h // 2, w // 2
        for _ in range(blocks):
            side_h, side_w = side_h // 2, side_w // 2
        self.hidden = nn.Linear(side_h * side_w * filters, dense_units)
        self.out = nn.Linear(dense_units, num_classes)

    def keras_order(self) -> list[str]:
        """The parameters' names in the order Keras and minires list the seed's weights
        (per layer kernel, bias; per block conv1, conv2, skip)."""
        modules = ["stem", *(f"blocks.{i}.{conv}" for i in range(len(self.blocks))
                             for conv in ("conv1", "conv2", "skip")), "hidden", "out"]
        return [f"{module}.{param}" for module in modules for param in ("weight", "bias")]

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.stem(x)), 2)
        for block in self.blocks:
            x = block(x)
        # Flatten in (h, w, c) order, as Keras does on NHWC, so weights transfer unchanged.
        x = x.permute(0, 2, 3, 1).flatten(1)
        return self.out(F.relu(self.hidden(x)))


def glorot_uniform_(model: nn.Module, generator: torch.Generator) -> None:
    """Keras' initialisation: Glorot-uniform kernels, zero biases."""
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(module.weight, generator=generator)
            nn.init.zeros_(module.bias)


def build_seed_resnet(seed: int = 0, channels_last: bool = True, **kwargs) -> SeedResNet:
    """The seed's model with Keras' initialisation, in PyTorch's faster CPU memory format."""
    model = SeedResNet(**kwargs)
    glorot_uniform_(model, torch.Generator().manual_seed(seed))
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


def keras_adam(model: nn.Module) -> torch.optim.Adam:
    return torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-7)


def step_functions(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[Callable, Callable]:
    """(train_step, infer) for benchmarks: one Adam step (Keras' settings) on the batch (x, y)
    with cross-entropy on class ids, and one forward pass without gradients."""
    optimizer = keras_adam(model)

    def train_step():
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def infer():
        with torch.no_grad():
            model(x)

    return train_step, infer


def to_tensor(x_nhwc: np.ndarray, channels_last: bool = True) -> torch.Tensor:
    """NHWC float array -> NCHW tensor (stored channels-last when asked: no copy then)."""
    t = torch.from_numpy(np.ascontiguousarray(x_nhwc)).permute(0, 3, 1, 2)
    return t if channels_last else t.contiguous()


def evaluate(model: nn.Module, x: np.ndarray, y: np.ndarray, batch_size: int = 256,
             channels_last: bool = True) -> tuple[float, float]:
    """(mean loss, accuracy) of integer labels y on NHWC images x."""
    model.eval()
    total_loss, correct = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            xb = to_tensor(x[start:start + batch_size], channels_last)
            yb = torch.from_numpy(y[start:start + batch_size].astype(np.int64))
            logits = model(xb)
            total_loss += float(F.cross_entropy(logits, yb, reduction="sum"))
            correct += int((logits.argmax(1) == yb).sum())
    model.train()
    return total_loss / len(x), correct / len(x)


def train(x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray,
          epochs: int = 10, batch_size: int = 64, seed: int = 0, channels_last: bool = True,
          log: Callable[[str], None] = print) -> list[dict]:
    """Train the seed's model with the seed's recipe; one dict of figures per epoch."""
    torch.manual_seed(seed)
    model = build_seed_resnet(seed, channels_last, input_shape=x_train.shape[1:],
                              num_classes=int(y_train.max()) + 1)
    optimizer = keras_adam(model)
    order_rng = np.random.default_rng(seed)
    history = []
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        order = order_rng.permutation(len(x_train))
        seen, loss_sum, correct = 0, 0.0, 0
        for first in range(0, len(order), batch_size):
            idx = order[first:first + batch_size]
            xb = to_tensor(x_train[idx], channels_last)
            yb = torch.from_numpy(y_train[idx].astype(np.int64))
            logits = model(xb)
            loss = F.cross_entropy(logits, yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            seen += len(idx)
            loss_sum += loss.item() * len(idx)
            correct += int((logits.argmax(1) == yb).sum())
        seconds = time.perf_counter() - start
        val_loss, val_acc = evaluate(model, x_val, y_val, channels_last=channels_last)
        row = dict(epoch=epoch, loss=loss_sum / seen, accuracy=correct / seen,
                   val_loss=val_loss, val_accuracy=val_acc, seconds=seconds)
        history.append(row)
        log(f"torch epoch {epoch}/{epochs}: loss {row['loss']:.4f} acc {row['accuracy']:.4f} "
            f"val_loss {val_loss:.4f} val_acc {val_acc:.4f} ({seconds:.1f} s)")
    return history
