"""Pictures of a run: learning curves and confusion matrices, as PNG files.

Drawn with Matplotlib (the ``plot`` extra) on its non-interactive Agg canvas, so they work on
machines without a display. Files are written atomically like every other output.
"""

from __future__ import annotations

import io
from pathlib import Path

from .data.atomic import atomic_write


def pyplot():
    """Matplotlib's pyplot on the Agg canvas, or an ImportError naming the extra to install."""
    try:
        import matplotlib
    except ImportError as exc:
        raise ImportError("drawing PNG charts needs Matplotlib: pip install minires[plot]") from exc
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def save_png(fig, path) -> None:
    """The figure as a PNG file, written atomically."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    with atomic_write(Path(path)) as handle:
        handle.write(buffer.getvalue())


def plot_history(history: dict, path, metric: str = "accuracy") -> None:
    """Loss and ``metric`` per epoch, training and validation (where the history has them),
    side by side."""
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for axes, metric in ((left, "loss"), (right, metric)):
        for key, style in ((metric, "o-"), ("val_" + metric, "s--")):
            values = history.get(key)
            if values:
                axes.plot(range(1, len(values) + 1), values, style, label=key)
        axes.set_xlabel("epoch")
        axes.set_ylabel(metric)
        axes.grid(alpha=0.3)
        if axes.get_legend_handles_labels()[0]:   # a change net trained without validation
            axes.legend()                           # has no F1 to draw
    fig.suptitle("minires training")
    save_png(fig, path)
    plt.close(fig)


def plot_confusion(matrix, class_names, path, title: str = "confusion matrix") -> None:
    """Rows are true classes, columns predicted ones; each cell shows its count."""
    plt = pyplot()
    size = max(5.0, 0.6 * len(class_names) + 2)
    fig, axes = plt.subplots(figsize=(size, size))
    image = axes.imshow(matrix, cmap="Blues")
    axes.set_xticks(range(len(class_names)), class_names, rotation=45, ha="right")
    axes.set_yticks(range(len(class_names)), class_names)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    threshold = matrix.max() / 2 if matrix.size else 0
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            axes.text(j, i, str(int(matrix[i, j])), ha="center", va="center", fontsize=8,
                      color="white" if matrix[i, j] > threshold else "black")
    axes.set_title(title)
    fig.colorbar(image, ax=axes, fraction=0.046)
    save_png(fig, path)
    plt.close(fig)
