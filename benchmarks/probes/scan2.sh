set -x
P=".venv/bin/python probes/probe.py --n 32 --size 8 --imbalance 4"
$P --epochs 10 --batch 8
$P --epochs 10 --batch 4
$P --epochs 10 --batch 4 --lr 5e-4
