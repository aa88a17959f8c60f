import copy
import os

import pytest
import torch

from unlearning_mock.mock_evaluator.engine.local import ProcessExecutor
from unlearning_mock.mock_evaluator.engine.threads import JOB_THREADS
from unlearning_mock.starter_kit import conv_backend
from unlearning_mock.starter_kit.data import load_digits_data, make_loaders
from unlearning_mock.starter_kit.models import SmallResNet
from unlearning_mock.starter_kit.original import load_or_train_original
from unlearning_mock.starter_kit.training import DIGITS_RECIPE


# The test process trains (the session's original, ``--executor inline`` jobs) at one torch thread, as every
# job of the evaluator does: two spin on a loaded 2-core machine.
torch.set_num_threads(JOB_THREADS)

# ``UNLEARNING_CONV_BACKEND=onednn|native`` forces one convolution backend on the test process's own training as
# well as on every evaluation's jobs (their ``--conv-backend`` default), so the suite runs under either.
if conv_backend.default_choice() != conv_backend.AUTO:
    conv_backend.apply(conv_backend.default_choice())

# A local Ray instance that a test starts (here or in a command run from here) listens on loopback only, never on
# this machine's network address: this is Ray's switch for clusters on Windows and macOS, where it does so.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")


def pytest_report_header(config):
    """Which kernels the trained models' last bits come from (``make test-second-kernel`` forces a lower set)."""
    return (f"torch {torch.__version__}, CPU kernels {torch.backends.cpu.get_cpu_capability()}, "
            f"oneDNN ISA limit {os.environ.get('ONEDNN_MAX_CPU_ISA', 'none')}, "
            f"convolutions {conv_backend.default_choice()} (process: {conv_backend.current()})")


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory):
    """One cache for the whole test session (the original model and oracles are reused across tests)."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="session")
def digits():
    return load_digits_data()


@pytest.fixture(scope="session")
def original(digits, cache_dir):
    return load_or_train_original(digits, SmallResNet, DIGITS_RECIPE, cache_dir=cache_dir, log=lambda *_: None)


@pytest.fixture
def fresh_original(original):
    return copy.deepcopy(original)


@pytest.fixture
def loaders(digits):
    return make_loaders(digits, seed=0)


@pytest.fixture(scope="session")
def digits_profile():
    """The digits setting's profile, as the evaluator passes it to a method that declares ``profile``."""
    from unlearning_mock.starter_kit.settings import load_setting

    return load_setting("digits").profile


@pytest.fixture(scope="session")
def one_step_source() -> str:
    """A real, cheap submission: one step of retain fine-tuning (``lr`` an option; 0 returns the original)."""
    return '''
import torch


def unlearning(net, retain_loader, forget_loader, validation_loader, lr=0.01):
    optimizer = torch.optim.SGD(net.parameters(), lr=lr)
    net.train()
    inputs, targets = next(iter(retain_loader))[:2]
    optimizer.zero_grad()
    torch.nn.functional.cross_entropy(net(inputs), targets).backward()
    optimizer.step()
    return net.eval()
'''


# -- the engines that the isolation and Ray tests run their evaluations on -------------------------------------
@pytest.fixture(scope="session")
def local_ray():
    """One local 2-CPU Ray instance for every Ray test of the test run (skipped when Ray is not installed)."""
    ray = pytest.importorskip("ray")
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, logging_level="warning")
    return ray


@pytest.fixture(scope="module")
def local_executor():
    executor = ProcessExecutor(2)
    yield executor
    executor.close()


@pytest.fixture(scope="module")
def ray_executor(local_ray):
    from unlearning_mock.mock_evaluator.engine.ray_engine import RayExecutor

    executor = RayExecutor()
    yield executor
    executor.close()
