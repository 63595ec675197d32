"""The paper's CNN, for 28x28x1 (MNIST, Fashion-MNIST) and 32x32x3 (CIFAR) inputs.

Layout, as the paper describes it (sizes are ours; the paper gives none):

    conv3x3(C -> w) + ReLU -> maxpool 2 -> BN
    conv3x3(w -> 2w) + ReLU -> BN -> maxpool 2
    conv3x3(2w -> 2w) + ReLU -> BN
    dropout 0.25 -> flatten -> linear(2w * (S/4)^2 -> hidden) + ReLU -> BN -> dropout 0.5 -> linear(-> classes)

with w = 32 filters and hidden = 256 by default.  Parameters: 862,218 for
28x28x1 / 10 classes (an fp32 gradient is 3.45 MB, enough that a 100 Mbit/s
link, not the CPU, limits a DDP step), 1,108,554 for 32x32x3 / 10 classes,
1,131,684 for 32x32x3 / 100 classes.  The second pooling sits after the second
block so that the linear layer sees a 7x7 (8x8 for CIFAR) map.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["PaperCNN", "build_model"]


class PaperCNN(nn.Module):
    def __init__(self, num_classes: int = 10, width: int = 32, hidden: int = 256, dropout: float = 0.25,
                 dropout_hidden: float = 0.5, in_channels: int = 1, image_size: int = 28):
        super().__init__()
        if in_channels < 1 or image_size < 4 or image_size % 4:
            raise ValueError(f"need in_channels >= 1 and image_size a multiple of 4, got {in_channels}, {image_size}")
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        if width < 1 or hidden < 1:
            raise ValueError(f"width and hidden must be positive, got {width}, {hidden}")
        for name, p in (("dropout", dropout), ("dropout_hidden", dropout_hidden)):
            if not 0.0 <= p < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {p}")
        self.input_shape = (in_channels, image_size, image_size)
        side = image_size // 4
        w2 = 2 * width
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU(inplace=True),
            nn.MaxPool2d(2),  # 28 -> 14 (32 -> 16)
            nn.BatchNorm2d(width),
            nn.Conv2d(width, w2, 3, padding=1), nn.ReLU(inplace=True), nn.BatchNorm2d(w2),
            nn.MaxPool2d(2),  # 14 -> 7 (16 -> 8)
            nn.Conv2d(w2, w2, 3, padding=1), nn.ReLU(inplace=True), nn.BatchNorm2d(w2),
        )
        self.classifier = nn.Sequential(
            nn.Dropout(dropout),
            nn.Flatten(),
            nn.Linear(w2 * side * side, hidden), nn.ReLU(inplace=True), nn.BatchNorm1d(hidden),
            nn.Dropout(dropout_hidden),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(f"expected input of shape (N, {', '.join(map(str, self.input_shape))}), "
                             f"got {tuple(x.shape)}")
        return self.classifier(self.features(x))


def build_model(name: str = "paper-cnn", **kwargs) -> nn.Module:
    if name != "paper-cnn":
        raise ValueError(f"unknown model {name!r}; available: 'paper-cnn'")
    return PaperCNN(**kwargs)
