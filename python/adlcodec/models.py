"""Small CNN for 28x28x1 images (Fashion-MNIST).

A stand-in with the shape of the paper's network (conv32 + ReLU -> maxpool -> BN
-> two more conv + BN blocks -> dropout -> linear -> BN -> linear); a later
issue refines the exact sizes.  About 0.87 M parameters, so an fp32 gradient is
~3.5 MB: enough that a 100 Mbit/s link, not the CPU, limits a DDP step.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["PaperCNN", "build_model"]


class PaperCNN(nn.Module):
    def __init__(self, num_classes: int = 10, width: int = 32, hidden: int = 256, dropout: float = 0.25):
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        if width < 1 or hidden < 1:
            raise ValueError(f"width and hidden must be positive, got {width}, {hidden}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        w2 = 2 * width
        self.features = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1), nn.ReLU(inplace=True),
            nn.MaxPool2d(2),  # 28 -> 14
            nn.BatchNorm2d(width),
            nn.Conv2d(width, w2, 3, padding=1), nn.ReLU(inplace=True), nn.BatchNorm2d(w2),
            nn.MaxPool2d(2),  # 14 -> 7
            nn.Conv2d(w2, w2, 3, padding=1), nn.ReLU(inplace=True), nn.BatchNorm2d(w2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(w2 * 7 * 7, hidden), nn.ReLU(inplace=True), nn.BatchNorm1d(hidden),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1:] != (1, 28, 28):
            raise ValueError(f"expected input of shape (N, 1, 28, 28), got {tuple(x.shape)}")
        return self.classifier(self.features(x))


def build_model(name: str = "paper-cnn", **kwargs) -> nn.Module:
    if name != "paper-cnn":
        raise ValueError(f"unknown model {name!r}; available: 'paper-cnn'")
    return PaperCNN(**kwargs)
