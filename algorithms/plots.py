"""Small picture writers shared by the families (sample grids, curves)."""

from __future__ import annotations

from pathlib import Path

import torch


def save_image_grid(images: torch.Tensor, path: Path, nrow: int = 8, min_side: int = 256) -> None:
    """Images in [-1, 1] as a grid PNG, upscaled without smoothing so 8x8 digits stay readable."""
    from PIL import Image
    from torchvision.utils import make_grid

    grid = make_grid((images.float() + 1) / 2, nrow=nrow, padding=1, pad_value=0.5)
    array = (grid.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
    image = Image.fromarray(array if array.shape[2] == 3 else array[:, :, 0])
    scale = max(1, -(-min_side // min(image.size)))
    image.resize((image.width * scale, image.height * scale), Image.NEAREST).save(path)


def line_plot(x, series: dict, path: Path, xlabel: str = "step", title: str = "") -> None:
    """One line per series: its y values over the shared x, or its own (x, y) pair."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for label, y in series.items():
        xs, ys = y if isinstance(y, tuple) else (x, y)
        ax.plot(xs, ys, marker="o", markersize=3, label=label)
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def embedding_plot(features, labels, path: Path, title: str = "", max_points: int = 2000, seed: int = 0) -> None:
    """2-D t-SNE of features, one colour per label (subsampled to max_points for speed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    from sklearn.manifold import TSNE

    features, labels = np.asarray(features, dtype=np.float32), np.asarray(labels)
    if len(features) > max_points:
        keep = np.random.default_rng(seed).choice(len(features), max_points, replace=False)
        features, labels = features[keep], labels[keep]
    points = TSNE(n_components=2, init="pca", perplexity=min(30.0, (len(features) - 1) / 3),
                  random_state=seed).fit_transform(features)
    fig, ax = plt.subplots(figsize=(5, 5))
    scatter = ax.scatter(points[:, 0], points[:, 1], c=labels, cmap="tab10", s=6)
    ax.legend(*scatter.legend_elements(), loc="best", fontsize=6, markerscale=0.8)
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
