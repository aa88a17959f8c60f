set -x
P=".venv/bin/python probes/probe.py --n 32 --size 8 --imbalance 4"
$P --epochs 10 --batch 8
$P --epochs 6 --batch 16
$P --epochs 10 --batch 16 --lr 3e-3
$P --epochs 10 --batch 16 --lr 3e-4
$P --epochs 10 --batch 16 --group-size 16
