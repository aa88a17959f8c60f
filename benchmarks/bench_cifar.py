"""Throughput of the ResNet-18 settings: fused oracle training, batched inference, concurrent unlearning runs.

On synthetic, class-dependent images of CIFAR-10's shape (normalised like the kit's, held in memory as
the evaluator holds them), or on the real files with ``--data-dir``. In one run, on one device:

1. **training** -- one epoch of the CIFAR-10 kit recipe (SGD lr 0.1, momentum 0.9, weight decay 5e-4,
   crop + flip, batch 128) over ``--images`` per model, one model at a time and then ``G`` models fused
   (``starter_kit.training.train_in_place``) for each ``G`` of ``--groups`` (and the ``G`` that
   ``auto_oracle_chunk`` picks on CUDA); prints model-images/s, the ratio to one at a time and the time
   the 1,024 oracles of an N = 512 evaluation (30 epochs x 45,000 images each) would take at that rate;
2. **inference** -- float32 eval logits of ``G`` models on the forget images (10% of ``--images``):
   ``logits_on`` one model at a time vs ``grouped_logits`` on the fused module (``figures_of_models``' path);
3. **concurrent unlearning runs** (CUDA; ``--concurrency`` to choose K, ``--concurrency none`` to skip):
   K spawned processes on the one device, each running the kit baseline ``cifar_kit_unlearning``
   (5 epochs of retain fine-tuning, batch 128) once on its own fresh ResNet-18 over
   ``--unlearn-images`` retain images, all started together; prints the wall time and the speed-up
   K x (time of one run alone) / (wall time of K runs side by side).

Untimed warm-up passes precede every timed one (CUDA context, cuDNN autotuning per shape, allocator).
``--amp`` trains (and runs the unlearning) under bf16 autocast (CUDA only); logits are float32 either way.

    .venv/bin/python benchmarks/bench_cifar.py                       # auto device; CPU: small defaults
    .venv/bin/python benchmarks/bench_cifar.py --device cuda --amp   # the GPU run (a few minutes)
"""

from __future__ import annotations

import argparse
import dataclasses
import multiprocessing as mp
import pathlib
import sys
import time

import numpy as np
import torch

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from unlearning_mock.starter_kit.cifar10 import CIFAR10_RECIPE, fake_cifar10_images, load_cifar10_data, normalize_images  # noqa: E402
from unlearning_mock.starter_kit.evaluation import logits_on  # noqa: E402
from unlearning_mock.starter_kit.models import fused_model, grouped_logits, resnet18  # noqa: E402
from unlearning_mock.starter_kit.training import auto_oracle_chunk, train_in_place  # noqa: E402

DEFAULTS = {  # per device: images per model, fused group sizes, warm-up images, unlearning retain images
    "cpu": {"images": 256, "groups": "2,4,8", "warmup": 32, "unlearn_images": 512, "concurrency": "none"},
    "cuda": {"images": 10_000, "groups": "8,32,64,128", "warmup": 512, "unlearn_images": 5_000,
             "concurrency": "1,4,8"},
}
ORACLES, ORACLE_EPOCHS, RETAIN_IMAGES = 1024, 30, 45_000   # one N = 512 CIFAR-10 evaluation


def synthetic_data(num_images: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(num_images) % 10)
    return normalize_images(fake_cifar10_images(labels, rng)), torch.from_numpy(labels)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def fresh_models(count: int, first_seed: int = 0) -> list[torch.nn.Module]:
    models = []
    for seed in range(first_seed, first_seed + count):
        torch.manual_seed(seed)
        models.append(resnet18())
    return models


def timed_training(groups: int, inputs, targets, recipe, device, warmup: int, compile_model: bool) -> float:
    """Seconds to train ``groups`` models (fused when > 1) for one epoch, after an untimed warm-up."""
    train_in_place(fresh_models(groups, 1000), inputs[:warmup], targets[:warmup], recipe, range(groups), device,
                   compile_model=compile_model)
    models = fresh_models(groups)
    synchronize(device)
    start = time.perf_counter()
    train_in_place(models, inputs, targets, recipe, range(groups), device, compile_model=compile_model)
    synchronize(device)
    return time.perf_counter() - start


def bench_training(args, inputs, targets, device, source: str) -> None:
    recipe = dataclasses.replace(CIFAR10_RECIPE, epochs=1, amp=args.amp)
    n = len(targets)
    print(f"\n[training] 1 epoch of the kit recipe (batch {recipe.batch_size}, crop+flip, SGD) on {n:,} {source} "
          f"per model{', bf16 autocast' if args.amp else ''}{', torch.compile' if args.compile else ''}")
    groups = [int(g) for g in args.groups.split(",") if g]
    if device.type == "cuda":
        auto = auto_oracle_chunk(resnet18, device, recipe, tuple(inputs.shape[1:]))
        print(f"auto_oracle_chunk on this device: G = {auto}")
        groups = sorted(set(groups) | {auto})
    alone = n / timed_training(1, inputs, targets, recipe, device, args.warmup, False)

    def report(label: str, rate: float) -> None:
        hours = ORACLES * ORACLE_EPOCHS * RETAIN_IMAGES / rate / 3600
        print(f"{label:>14}: {rate:>10,.0f} model-images/s  ({rate / alone:5.1f}x one at a time)  "
              f"-> 1,024 oracles x 30 epochs x 45,000 images: {hours:,.1f} h")

    report("one at a time", alone)
    for g in groups:
        try:
            seconds = timed_training(g, inputs, targets, recipe, device, args.warmup, args.compile)
        except torch.OutOfMemoryError:
            print(f"{'fused G=' + str(g):>14}: out of memory")
            torch.cuda.empty_cache()
            continue
        report(f"fused G={g}", g * n / seconds)


def bench_inference(args, inputs, device) -> None:
    g = min(max(int(g) for g in args.groups.split(",") if g), 32)
    forget = inputs[: max(1, len(inputs) // 10)]
    models = [m.to(device).eval() for m in fresh_models(g)]
    fused = fused_model(models).to(device).eval()
    logits_on(models[0], forget[:64]), grouped_logits(fused, forget[:64], g)   # warm-up
    synchronize(device)
    start = time.perf_counter()
    for model in models:
        logits_on(model, forget)
    alone = time.perf_counter() - start
    start = time.perf_counter()
    grouped_logits(fused, forget, g)
    synchronize(device)
    together = time.perf_counter() - start
    rate_alone, rate_fused = g * len(forget) / alone, g * len(forget) / together
    print(f"\n[inference] float32 eval logits of {g} models on {len(forget):,} images: one at a time "
          f"{rate_alone:,.0f} model-images/s, fused {rate_fused:,.0f} model-images/s ({rate_fused / rate_alone:.1f}x)")


def _unlearning_worker(device: str, num_images: int, amp: bool, seed: int, barrier, results) -> None:
    """One process: a fresh ResNet-18, the kit's loaders over its retain set, the kit baseline, timed."""
    from unlearning_mock.starter_kit.baseline import cifar_kit_unlearning
    from unlearning_mock.starter_kit.data import UnlearningData, make_loaders

    inputs, targets = synthetic_data(num_images + 20, seed)
    data = UnlearningData(name="bench", train_inputs=inputs[:num_images], train_targets=targets[:num_images],
                          val_inputs=inputs[-20:-10], val_targets=targets[-20:-10], test_inputs=inputs[-10:],
                          test_targets=targets[-10:], forget_idx=np.arange(num_images // 10))
    loaders = make_loaders(data, batch_size=128, seed=seed)
    warm = make_loaders(dataclasses.replace(data, train_inputs=inputs[:512], train_targets=targets[:512],
                                            forget_idx=np.arange(51)), batch_size=128, seed=seed)
    torch.backends.cudnn.benchmark = True
    with torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=amp):
        cifar_kit_unlearning(resnet18().to(device), warm.retain, warm.forget, warm.validation)   # warm-up
        torch.manual_seed(seed)
        net = resnet18().to(device)
        synchronize(torch.device(device))
        barrier.wait()
        start = time.time()
        cifar_kit_unlearning(net, loaders.retain, loaders.forget, loaders.validation)
        synchronize(torch.device(device))
    results.put((start, time.time()))


def concurrent_runs(k: int, device: str, num_images: int, amp: bool) -> tuple[float, float]:
    """(wall seconds of K side-by-side runs, mean seconds per run)."""
    context = mp.get_context("spawn")
    barrier, results = context.Barrier(k), context.Queue()
    workers = [context.Process(target=_unlearning_worker, args=(device, num_images, amp, seed, barrier, results))
               for seed in range(k)]
    for worker in workers:
        worker.start()
    spans = [results.get(timeout=900) for _ in workers]
    for worker in workers:
        worker.join()
    return max(e for _, e in spans) - min(s for s, _ in spans), float(np.mean([e - s for s, e in spans]))


def bench_concurrency(args, device) -> None:
    ks = [int(k) for k in args.concurrency.split(",")]
    print(f"\n[concurrency] kit baseline (5 epochs of retain fine-tuning, batch 128) on {args.unlearn_images:,} "
          f"retain images per run, K processes on {device}{', bf16 autocast' if args.amp else ''}")
    single = None
    for k in ks:
        wall, per_run = concurrent_runs(k, str(device), args.unlearn_images, args.amp)
        single = per_run if single is None and k == 1 else single
        speedup = f"  speed-up {k * single / wall:.2f}x" if single else ""
        print(f"K={k}: {k} runs in {wall:.1f} s wall, {per_run:.1f} s per run{speedup}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda, cuda:1, ...")
    parser.add_argument("--images", type=int, default=None, help="training images per model (CPU 256, CUDA 10,000)")
    parser.add_argument("--groups", default=None, help="fused group sizes, comma-separated (CPU 2,4,8; CUDA 8,32,64,128)")
    parser.add_argument("--amp", action="store_true", help="bf16 autocast for training and unlearning (CUDA only)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the fused training forward")
    parser.add_argument("--concurrency", default=None,
                        help="K values for concurrent unlearning runs, e.g. 1,4,8 (CUDA default), or none")
    parser.add_argument("--unlearn-images", type=int, default=None, help="retain images per unlearning run")
    parser.add_argument("--data-dir", default=None, help="use the real CIFAR-10 from this folder instead")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args(argv)

    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available()
                          else "cpu" if args.device == "auto" else args.device)
    if args.amp and device.type != "cuda":
        parser.error("--amp needs a CUDA device")
    defaults = DEFAULTS["cuda" if device.type == "cuda" else "cpu"]
    args.images = args.images or defaults["images"]
    args.groups = args.groups or defaults["groups"]
    args.warmup = defaults["warmup"]
    args.unlearn_images = args.unlearn_images or defaults["unlearn_images"]
    args.concurrency = args.concurrency or defaults["concurrency"]
    if args.threads:
        torch.set_num_threads(args.threads)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        name = f"{torch.cuda.get_device_name(device)}, CUDA {torch.version.cuda}"
    else:
        name = f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {device} ({name}); torch {torch.__version__}")

    if args.data_dir:
        data = load_cifar10_data(args.data_dir)
        inputs, targets = data.train_inputs[:args.images], data.train_targets[:args.images]
        source = f"CIFAR-10 images from {args.data_dir}"
    else:
        inputs, targets = synthetic_data(args.images)
        source = "synthetic CIFAR-shaped images"
    bench_training(args, inputs, targets, device, source)
    bench_inference(args, inputs, device)
    if args.concurrency != "none":
        bench_concurrency(args, device)


if __name__ == "__main__":
    main()
