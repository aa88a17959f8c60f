"""Print the probe's cache key for a command line (to move only-role caches under the combined key)."""
import sys
import probe
from unlearning_mock.starter_kit.training import cache_hash
sys.argv = ["probe"] + sys.argv[1:]
import argparse
parser_args = None
orig_parse = argparse.ArgumentParser.parse_args
def grab(self, *a, **k):
    global parser_args
    parser_args = orig_parse(self, *a, **k)
    raise SystemExit
argparse.ArgumentParser.parse_args = grab
try:
    probe.main()
except SystemExit:
    pass
a = parser_args
data, _ = probe.build_data(a)
print(cache_hash(vars(a) | {"n": 0, "seed": 0, "threads": 0, "chunk": 0, "ft_lr": 0, "ft_epochs": 0} | ({"only_role": None} if "--old" not in sys.argv[0:0] else {}), data.fingerprint()))
print(cache_hash(vars(a) | {"n": 0, "seed": 0, "threads": 0, "chunk": 0, "ft_lr": 0, "ft_epochs": 0}, data.fingerprint()))
