"""Train the plate recogniser from generated plate rows and export it to ONNX.

    .venv/bin/python scripts/train_plate_recogniser.py [--plates 48000] [--epochs 10]

CPU only, 2 threads, a fixed seed: the same command gives the same model on the same
software (52 minutes on this project's 2-core machine; `--max-minutes`, 120 by default,
stops a slower machine after the epoch that passes it, and says so). It generates its
rows (`plate_recogniser_data.py`; nothing is downloaded), trains the network of
`plate_recogniser_net.py` with CTC, reports the exact-row rate on rows of plates it never
trained on, and writes `edge_agent/plates/models/plate_recogniser.onnx` with its input
size and alphabet as ONNX metadata, which `edge_agent/plates/recogniser.py` reads. Needs PyTorch.
"""

import argparse
import json
import random
import time
from pathlib import Path

import numpy as np
import onnx
import torch
from plate_recogniser_data import Row, generate_all
from plate_recogniser_net import RecogniserNet
from torch.nn import functional

from edge_agent.plates.recogniser import (
    ALPHABET,
    DEFAULT_MODEL,
    METADATA_KEY,
    ROW_HEIGHT,
    ROW_WIDTH,
    decode,
)

OPSET = 17
VALIDATION_SEED = 10_000_000  # plates drawn from here on are never trained on


def _tensors(rows: list[Row]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    images = torch.from_numpy(np.stack([image for image, _ in rows]))
    labels = [[ALPHABET.index(ch) + 1 for ch in text] for _, text in rows]
    lengths = torch.tensor([len(label) for label in labels])
    return images, torch.tensor([i for label in labels for i in label]), lengths


def exact_rate(model: RecogniserNet, rows: list[Row]) -> float:
    model.eval()
    with torch.no_grad():
        probs = model(torch.from_numpy(np.stack([image for image, _ in rows]))).numpy()
    model.train()
    return sum(
        decode(p, ALPHABET).text == text for p, (_, text) in zip(probs, rows, strict=True)
    ) / len(rows)


def export(model: RecogniserNet, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    model.eval()
    torch.onnx.export(
        model,
        (torch.zeros(1, 1, ROW_HEIGHT, ROW_WIDTH),),
        str(path),
        input_names=["rows"],
        output_names=["probabilities"],
        dynamic_axes={"rows": {0: "batch"}, "probabilities": {0: "batch"}},
        opset_version=OPSET,
        dynamo=False,
    )
    onnx_model = onnx.load(str(path))
    entry = onnx_model.metadata_props.add()
    entry.key = METADATA_KEY
    entry.value = json.dumps(
        {
            "alphabet": ALPHABET,
            "input": f"grey rows (N, 1, {ROW_HEIGHT}, {ROW_WIDTH}) in [0, 1], see prepare()",
            "output": "(N, steps, 1 + len(alphabet)) probabilities, CTC blank first",
        }
    )
    onnx.save(onnx_model, str(path))


def train(plates: int, epochs: int, batch: int, seed: int, out: Path, max_minutes: float) -> None:
    torch.manual_seed(seed)
    torch.set_num_threads(2)
    started = time.monotonic()
    rows = generate_all(seed, plates)
    held = generate_all(VALIDATION_SEED + seed, max(200, plates // 30))
    print(
        f"{len(rows)} rows ({len(held)} held out) in {time.monotonic() - started:.0f} s", flush=True
    )
    model = RecogniserNet(len(ALPHABET) + 1)
    steps = epochs * (len(rows) // batch)
    optimiser = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, 2e-3, total_steps=steps, pct_start=0.1
    )
    order = random.Random(seed)  # noqa: S311 - a reproducible order
    step = 0
    model.train()
    for epoch in range(1, epochs + 1):
        indices = list(range(len(rows)))
        order.shuffle(indices)
        for start in range(0, len(indices) - batch + 1, batch):
            images, targets, lengths = _tensors([rows[i] for i in indices[start : start + batch]])
            log_probs = functional.log_softmax(model.logits(images), dim=2).transpose(0, 1)
            steps_in = torch.full((batch,), log_probs.shape[0], dtype=torch.long)
            loss = functional.ctc_loss(log_probs, targets, steps_in, lengths, zero_infinity=True)
            optimiser.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            optimiser.step()
            schedule.step()
            step += 1
            if step % 200 == 0:
                minutes = (time.monotonic() - started) / 60
                print(
                    f"epoch {epoch} step {step}/{steps} loss {loss.item():.4f} {minutes:.1f} min",
                    flush=True,
                )
        print(
            f"epoch {epoch}: held-out rows read exactly {100 * exact_rate(model, held):.1f} %",
            flush=True,
        )
        export(model, out)
        model.train()
        if (time.monotonic() - started) / 60 > max_minutes:
            print(f"stopped after epoch {epoch}: over {max_minutes} min", flush=True)
            break
    print(f"wrote {out} after {(time.monotonic() - started) / 60:.1f} min", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--plates", type=int, default=48_000)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--out", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--max-minutes", type=float, default=120.0)
    args = parser.parse_args()
    train(args.plates, args.epochs, args.batch, args.seed, args.out, args.max_minutes)


if __name__ == "__main__":
    main()
