"""The plate recogniser's network (PyTorch, training only): a small CRNN with CTC.

Convolutions take a row (1, 32, 192) down to one feature column per 4 input pixels (48
steps, over three for each of a one-row plate's ten characters, so a pair of equal
characters keeps its blank between), a bidirectional LSTM reads the columns in context
(a series letter sits after two digits), and a linear layer scores the plate alphabet and
the CTC blank at each step. About 0.3 M parameters: it trains from scratch on 2 CPU cores
in under an hour and reads a row in about a millisecond. The edge agent runs the exported
ONNX with `edge_agent/plates/recogniser.py`.
"""

import torch
from torch import Tensor, nn


def _conv(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, 1, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(True)]


class RecogniserNet(nn.Module):
    """Rows (N, 1, 32, W) in [0, 1] -> class probabilities (N, W/4, classes), softmax
    taken, blank first."""

    def __init__(self, classes: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            *_conv(1, 16),
            nn.MaxPool2d(2),  # 16 x W/2
            *_conv(16, 32),
            nn.MaxPool2d(2),  # 8 x W/4
            *_conv(32, 64),
            *_conv(64, 64),
            nn.MaxPool2d((2, 1)),  # 4 x W/4
            *_conv(64, 96),
            nn.MaxPool2d((2, 1)),  # 2 x W/4
            nn.Conv2d(96, 128, (2, 1), bias=False),  # 1 x W/4
            nn.BatchNorm2d(128),
            nn.ReLU(True),
        )
        self.context = nn.LSTM(128, 96, batch_first=True, bidirectional=True)
        self.classify = nn.Linear(192, classes)

    def logits(self, rows: Tensor) -> Tensor:
        columns = self.features(rows).squeeze(2).transpose(1, 2)  # N, steps, 128
        context, _ = self.context(columns)
        return self.classify(context)

    def forward(self, rows: Tensor) -> Tensor:
        return torch.softmax(self.logits(rows), dim=2)
