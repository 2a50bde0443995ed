"""Train the plate detector from generated scenes and export it to ONNX.

    .venv/bin/python scripts/train_plate_detector.py [--steps 700] [--out PATH]

CPU only, 2 threads, a fixed seed: the same command gives the same model on the same
software. It generates its own scenes (nothing is downloaded), trains the network of
`plate_detector_net.py` and writes `edge_agent/plates/models/plate_detector.onnx` with its
input size, normalisation and output layout as ONNX metadata, which
`edge_agent/plates/detector.py` reads. Needs PyTorch (`pip install torch`), which the
edge agent itself does not.
"""

import argparse
import json
import random
import time
from pathlib import Path

import onnx
import torch
from plate_detector_data import Sample, draw, generate_all
from plate_detector_net import CORNER_SCALE, STRIDE, PlateNet, loss
from torch.utils.data import DataLoader, Dataset

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "edge_agent" / "plates" / "models" / "plate_detector.onnx"
INPUT_WIDTH, INPUT_HEIGHT = 640, 384
OPSET = 17


class Views(Dataset[tuple[torch.Tensor, ...]]):
    """Augmented views of the generated scenes; view `i` is the same for a given seed."""

    def __init__(self, samples: list[Sample], seed: int, length: int) -> None:
        self._samples, self._seed, self._length = samples, seed, length

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        rng = random.Random(self._seed * 1_000_003 + index)  # noqa: S311 - reproducible views
        arrays = draw(rng, self._samples[rng.randrange(len(self._samples))])
        return tuple(torch.from_numpy(a) for a in arrays)


def export(model: torch.nn.Module, path: Path) -> None:
    """ONNX at the deployed input size, with what a runtime needs to know as metadata."""
    path.parent.mkdir(parents=True, exist_ok=True)
    model.eval()
    torch.onnx.export(
        model,
        (torch.zeros(1, 3, INPUT_HEIGHT, INPUT_WIDTH),),
        str(path),
        input_names=["image"],
        output_names=["heatmap", "corners"],
        opset_version=OPSET,
        dynamo=False,
    )
    onnx_model = onnx.load(str(path))
    layout = {
        "input_width": INPUT_WIDTH,
        "input_height": INPUT_HEIGHT,
        "input": "RGB, float32 in [0, 1], NCHW, letterboxed at the top left, padding 114",
        "stride": STRIDE,
        "corner_scale": CORNER_SCALE,
        "outputs": "heatmap (1, 1, H/stride, W/stride) plate score after sigmoid; corners "
        "(1, 8, H/stride, W/stride): x, y of top-left, top-right, bottom-right, bottom-left "
        "of the plate, minus the cell centre ((i + 0.5) * stride), over corner_scale",
    }
    entry = onnx_model.metadata_props.add()
    entry.key, entry.value = "plate_detector", json.dumps(layout)
    onnx.save(onnx_model, str(path))


def train(steps: int, batch: int, scenes: int, seed: int, out: Path, max_minutes: float) -> None:
    torch.manual_seed(seed)
    torch.set_num_threads(2)
    started = time.monotonic()
    samples = generate_all(seed, scenes)
    print(f"{len(samples)} scenes in {time.monotonic() - started:.0f} s", flush=True)
    views = Views(samples, seed, steps * batch)
    loader = DataLoader(views, batch_size=batch, num_workers=1, persistent_workers=True)
    model = PlateNet()
    optimiser = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, 3e-3, total_steps=steps, pct_start=0.1
    )
    model.train()
    for step, (image, heat, offsets, weight) in enumerate(loader, 1):
        heat_loss, corner_loss = loss(model(image), heat, offsets, weight)
        total = heat_loss + 1.5 * corner_loss
        optimiser.zero_grad()
        total.backward()
        optimiser.step()
        schedule.step()
        minutes = (time.monotonic() - started) / 60
        if step % 50 == 0 or step == steps:
            print(
                f"step {step}/{steps} heat {heat_loss.item():.3f} "
                f"corners {corner_loss.item():.4f} {minutes:.1f} min",
                flush=True,
            )
        if step % 250 == 0:  # a usable model survives an interrupted run
            export(model, out)
            model.train()
        if minutes > max_minutes:
            print(f"stopped at step {step}: over {max_minutes} min", flush=True)
            break
    export(model, out)
    print(f"wrote {out} after {(time.monotonic() - started) / 60:.1f} min", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=700)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--scenes", type=int, default=500)
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--out", type=Path, default=MODEL)
    parser.add_argument("--max-minutes", type=float, default=60.0)
    args = parser.parse_args()
    train(args.steps, args.batch, args.scenes, args.seed, args.out, args.max_minutes)


if __name__ == "__main__":
    main()
