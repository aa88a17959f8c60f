"""Throughput of the CIFAR-10 setting: one epoch of the original recipe, and the confidence pass.

On synthetic, class-dependent images of CIFAR-10's shape (normalised like the kit's, held in memory
as the evaluator holds them), or on the real files with ``--data-dir``:

* training: ``starter_kit.training.train_models`` with torchvision's ResNet-18 and the kit's recipe
  (SGD lr 0.1, momentum 0.9, weight decay 5e-4, crop + flip, batch 128), one epoch over ``--images``;
* confidence pass: eval-mode logits on the forget examples (10% of ``--images``) in batches of 1024,
  cast to float32, then ``mock_evaluator.metric.logit_scaled_confidence``.

Prints images/second for each and the device. ``--amp`` runs both under bf16 autocast (CUDA only);
the logits are cast to float32 before the confidence either way.

    .venv/bin/python benchmarks/bench_cifar.py                      # auto device; CPU: 1,024 images
    .venv/bin/python benchmarks/bench_cifar.py --device cuda --images 50000 --amp
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import pathlib
import sys
import time

import numpy as np
import torch

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mock_evaluator.metric import logit_scaled_confidence  # noqa: E402
from starter_kit.cifar10 import CIFAR10_RECIPE, fake_cifar10_images, load_cifar10_data, normalize_images  # noqa: E402
from starter_kit.evaluation import logits_on  # noqa: E402
from starter_kit.models import resnet18  # noqa: E402
from starter_kit.training import train_models  # noqa: E402

CPU_DEFAULT_IMAGES = 1024
GPU_DEFAULT_IMAGES = 50_000


def synthetic_data(num_images: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(num_images) % 10)
    return normalize_images(fake_cifar10_images(labels, rng)), torch.from_numpy(labels)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda, cuda:1, ...")
    parser.add_argument("--images", type=int, default=None,
                        help=f"training images (default {CPU_DEFAULT_IMAGES} on CPU, {GPU_DEFAULT_IMAGES} on CUDA)")
    parser.add_argument("--amp", action="store_true", help="bf16 autocast for training and logits (CUDA only)")
    parser.add_argument("--data-dir", default=None, help="use the real CIFAR-10 from this folder instead")
    parser.add_argument("--no-augment", action="store_true",
                        help="train without crop+flip (to see what the augmentation costs)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args(argv)

    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available()
                          else "cpu" if args.device == "auto" else args.device)
    if args.amp and device.type != "cuda":
        parser.error("--amp needs a CUDA device")
    if args.threads:
        torch.set_num_threads(args.threads)
    num_images = args.images or (GPU_DEFAULT_IMAGES if device.type == "cuda" else CPU_DEFAULT_IMAGES)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        name = torch.cuda.get_device_name(device)
    else:
        name = f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {device} ({name}); torch {torch.__version__}; "
          f"precision: {'bf16 autocast' if args.amp else 'float32'}")

    if args.data_dir:
        data = load_cifar10_data(args.data_dir)
        inputs, targets = data.train_inputs[:num_images], data.train_targets[:num_images]
        source = f"CIFAR-10 from {args.data_dir}"
    else:
        inputs, targets = synthetic_data(num_images)
        source = "synthetic CIFAR-shaped images"
    num_images = len(targets)
    forget = slice(0, max(1, num_images // 10))
    recipe = dataclasses.replace(CIFAR10_RECIPE, epochs=1, augment="none" if args.no_augment else "crop_flip")
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if args.amp else contextlib.nullcontext

    on_gpu = device.type == "cuda"
    warmup, min_confidence_images = (512, 20_000) if on_gpu else (128, 1000)
    # warm-up (CUDA context, cuDNN autotuning, allocator) on a small slice, not timed
    with autocast():
        train_models(resnet18, inputs[:warmup], targets[:warmup], recipe, [1], device)
    synchronize(device)

    start = time.perf_counter()
    with autocast():
        (model,) = train_models(resnet18, inputs, targets, recipe, [0], device)
    synchronize(device)
    train_s = time.perf_counter() - start
    print(f"train:      1 epoch of the original recipe on {num_images} {source} "
          f"(batch {recipe.batch_size}, {recipe.augment}, SGD): {train_s:.2f} s = {num_images / train_s:,.0f} images/s")

    forget_inputs, forget_targets = inputs[forget], targets[forget]
    with autocast():
        logits_on(model, forget_inputs[:warmup])
    repeats = max(1, -(-min_confidence_images // len(forget_targets)))  # time enough images
    start = time.perf_counter()
    for _ in range(repeats):
        with autocast():
            logits = logits_on(model, forget_inputs)       # eval mode, float32 on the CPU
        confidences = logit_scaled_confidence(logits.numpy(), forget_targets.numpy())
    conf_s = (time.perf_counter() - start) / repeats
    assert logits.dtype == torch.float32 and np.isfinite(confidences).all()
    print(f"confidence: eval logits + logit-scaled confidence on {len(forget_targets)} forget images "
          f"(x{repeats}): {conf_s:.3f} s = {len(forget_targets) / conf_s:,.0f} images/s")
    per_epoch_full = 50_000 / (num_images / train_s)
    print(f"estimate:   one full 50,000-image epoch {per_epoch_full:.0f} s; one 30-epoch model "
          f"{30 * per_epoch_full / 60:.1f} min on this device")


if __name__ == "__main__":
    main()
