"""The plate detector's network, its training targets and its loss (PyTorch, training only).

A CenterNet-style detector: a plate is the peak of a heatmap at stride 8, and at that
cell eight numbers give the plate's four corners (top-left, top-right, bottom-right,
bottom-left of the plate face) relative to the cell, so the reader can rectify a tilted
plate by perspective. The backbone is a small stack of depthwise-separable convolutions
with a feature pyramid back to stride 8: under half a GFLOP at 640x384, so it trains
from scratch on 2 CPU cores within the hour and runs in a few tens of milliseconds on a
Raspberry Pi. The edge agent runs the exported ONNX with `edge_agent/plates/detector.py`.
"""

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor, nn
from torch.nn import functional

STRIDE = 8
# Corner offsets are predicted in units of this many input pixels (a plate at the
# detector's scale is 40-170 px wide), which keeps the regression targets near 1.
CORNER_SCALE = 64.0


def _conv(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(True)
    )


def _separable(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_in, 3, stride, 1, groups=c_in, bias=False),
        nn.BatchNorm2d(c_in),
        nn.ReLU(True),
        nn.Conv2d(c_in, c_out, 1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(True),
    )


def _stage(c_in: int, c_out: int, blocks: int) -> nn.Sequential:
    return nn.Sequential(
        _separable(c_in, c_out, 2), *(_separable(c_out, c_out) for _ in range(blocks - 1))
    )


class PlateNet(nn.Module):
    """Image (N, 3, H, W) in [0, 1], RGB -> heatmap (N, 1, H/8, W/8) after sigmoid and
    corners (N, 8, H/8, W/8) in CORNER_SCALE units relative to each cell's centre."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(_conv(3, 16, 2), _separable(16, 32, 2))  # stride 4
        self.down8 = _stage(32, 64, 2)
        self.down16 = _stage(64, 96, 3)
        self.down32 = _stage(96, 128, 3)
        self.top = nn.Conv2d(128, 64, 1)
        self.lateral16 = nn.Conv2d(96, 64, 1)
        self.lateral8 = nn.Conv2d(64, 64, 1)
        self.smooth16 = _separable(64, 64)
        self.smooth8 = _separable(64, 64)
        self.heatmap = nn.Sequential(_separable(64, 48), nn.Conv2d(48, 1, 1))
        self.corners = nn.Sequential(_separable(64, 48), nn.Conv2d(48, 8, 1))
        nn.init.constant_(self.heatmap[-1].bias, -4.0)  # a rare class: start near 2 %

    def forward(self, image: Tensor) -> tuple[Tensor, Tensor]:
        s8 = self.down8(self.stem(image))
        s16 = self.down16(s8)
        s32 = self.down32(s16)
        p = self.top(s32)
        p = self.smooth16(self.lateral16(s16) + functional.interpolate(p, size=s16.shape[2:]))
        p = self.smooth8(self.lateral8(s8) + functional.interpolate(p, size=s8.shape[2:]))
        return torch.sigmoid(self.heatmap(p)), self.corners(p)


def encode(
    plates: list[NDArray[np.float32]], height: int, width: int
) -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.float32]]:
    """Training targets for an input of `height` x `width` holding `plates` (each 4x2
    corners in input pixels): the heatmap, the corner offsets and where they count."""
    gh, gw = height // STRIDE, width // STRIDE
    heat = np.zeros((gh, gw), np.float32)
    offsets = np.zeros((8, gh, gw), np.float32)
    weight = np.zeros((gh, gw), np.float32)
    ys, xs = np.mgrid[0:gh, 0:gw].astype(np.float32)
    for corners in plates:
        centre = corners.mean(axis=0) / STRIDE - 0.5
        if not (0 <= centre[0] < gw and 0 <= centre[1] < gh):
            continue
        span = (corners.max(axis=0) - corners.min(axis=0)) / STRIDE
        sx, sy = max(0.6, span[0] / 6), max(0.6, span[1] / 4)
        blob = np.exp(-((xs - centre[0]) ** 2) / (2 * sx**2) - (ys - centre[1]) ** 2 / (2 * sy**2))
        heat = np.maximum(heat, blob)
        cx, cy = min(gw - 1, round(float(centre[0]))), min(gh - 1, round(float(centre[1])))
        heat[cy, cx] = 1.0
        for y in range(max(0, cy - 1), min(gh, cy + 2)):
            for x in range(max(0, cx - 1), min(gw, cx + 2)):
                cell = np.array([(x + 0.5) * STRIDE, (y + 0.5) * STRIDE], np.float32)
                offsets[:, y, x] = ((corners - cell) / CORNER_SCALE).reshape(-1)
                weight[y, x] = 1.0 if (x, y) == (cx, cy) else 0.5
    return heat, offsets, weight


def loss(
    predicted: tuple[Tensor, Tensor], heat: Tensor, offsets: Tensor, weight: Tensor
) -> tuple[Tensor, Tensor]:
    """CenterNet's penalty-reduced focal loss on the heatmap and a weighted L1 loss on
    the corners, each per plate."""
    score, corners = predicted
    score = score[:, 0].clamp(1e-4, 1 - 1e-4)
    positive = heat.eq(1.0).float()
    plates = positive.sum().clamp(min=1.0)
    focal_pos = -(torch.log(score) * (1 - score) ** 2 * positive).sum()
    focal_neg = -(torch.log(1 - score) * score**2 * (1 - heat) ** 4 * (1 - positive)).sum()
    l1 = (functional.l1_loss(corners, offsets, reduction="none").sum(1) * weight).sum()
    return (focal_pos + focal_neg) / plates, l1 / weight.sum().clamp(min=1.0)
