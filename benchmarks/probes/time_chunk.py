"""Time fused oracle training per model: chunk G, batch b, 1 epoch (wall and CPU)."""
import sys, time, subprocess
import torch
from unlearning_mock.starter_kit.mnist_groups import load_mnist_groups_data
from unlearning_mock.starter_kit.models import SmallResNet
from unlearning_mock.starter_kit.training import Recipe, train_models
torch.set_num_threads(int(sys.argv[3]) if len(sys.argv) > 3 else 1)
d = load_mnist_groups_data()
G, b = int(sys.argv[1]), int(sys.argv[2])
r = Recipe(epochs=1, batch_size=b, optimizer="adam", lr=1e-3, weight_decay=5e-3, class_weighted=True)
x, y = d.retain
print(subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
w, c = time.perf_counter(), time.process_time()
train_models(SmallResNet, x, y, r, list(range(G)))
w, c = time.perf_counter() - w, time.process_time() - c
print(f"G={G} b={b}: per model-epoch wall {w/G:.3f}s cpu {c/G:.3f}s")
