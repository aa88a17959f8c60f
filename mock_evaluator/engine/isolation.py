"""Each job in a child process of a pristine worker: what a submission does to its process ends with its call.

A worker -- a local worker process or a Ray worker -- is *pristine*: it imported torch and the project and
loaded the setting and the original weights; it never runs a submission's code, never starts a thread pool
(it keeps one torch thread: GNU OpenMP hangs in a child forked after its parent used a pool) and never
touches CUDA (a forked child could not use it afterwards). For each job it forks a child:

* **untrusted** (:func:`run_untrusted`: an unlearning call, loading a submission to check its options): the
  child becomes a process group of its own, asks to die with the worker, is the first the kernel's OOM
  killer takes, and may allocate at most ``Limits.memory`` beyond what it inherited (``RLIMIT_DATA``). It
  reports in JSON lines on a pipe -- ``start`` when its timed part begins (before any submission code runs)
  and ``done`` with a failure or none -- and hands weights back through shared memory laid out like the
  original's state dict (:class:`StateLayout`): nothing it sends is unpickled. The worker times the call
  from ``start`` to ``done``, stops it at ``Limits.seconds``, then kills the child's process group and every
  process the call left behind (on Linux the worker is a child subreaper: orphans come back to it), and
  only then reads the weights.
* **trusted** (:func:`run_trusted`: oracle training, the timing retrain, figures on a GPU): a child with
  the job's torch threads; its result comes back pickled (no submission code ever ran in it).
"""

from __future__ import annotations

import ctypes
import json
import math
import mmap
import os
import pickle
import select
import signal
import sys
import threading
import time
import traceback
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Iterator

import torch

try:
    import resource
except ImportError:  # not a Unix: no memory limit
    resource = None

from unlearning_mock.mock_evaluator.engine.limits import Limits
from unlearning_mock.mock_evaluator.engine.figures import ModelFailure

PR_SET_PDEATHSIG, PR_SET_CHILD_SUBREAPER = 1, 36
MESSAGE_LIMIT = 1 << 20     # bytes of one JSON line from an untrusted child
ERROR_LIMIT = MESSAGE_LIMIT // 4  # characters of the failure it reports
ALIGN = 64                  # byte alignment of each tensor in a weights block

_job_threads = 1            # torch threads of each job's child (the worker itself keeps one)
_running = None             # the child being followed (a _Child), stopped if this worker is terminated


# -- the worker process ------------------------------------------------------------------------------
def prepare_worker(threads: int, terminate_children: bool) -> None:
    """Make this process a pristine worker whose job children get ``threads`` torch threads.
    ``terminate_children``: on SIGTERM stop the running child and its leftovers, then exit (a worker
    process of our own; not a Ray worker, whose signals are Ray's)."""
    global _job_threads
    _job_threads = threads
    torch.set_num_threads(1)
    _prctl(PR_SET_CHILD_SUBREAPER, 1)
    if terminate_children and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate)


def _terminate(signum, frame) -> None:
    if _running is not None:
        _stop(_running, set())
    os._exit(128 + signum)


def _prctl(option: int, value: int) -> bool:
    """Linux ``prctl``; False where there is none (the worker then cannot adopt orphans or bind its
    children's lives to its own)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        return _libc().prctl(option, value, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


@lru_cache(maxsize=1)
def _libc() -> ctypes.CDLL:
    """The C library, opened once per worker (each job's child inherits the handle)."""
    return ctypes.CDLL(None, use_errno=True)


def child_pids(pid: int | str = "self") -> set[int]:
    """The child processes of ``pid`` (this process by default; Linux, empty elsewhere or once it ended)."""
    found: set[int] = set()
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as handle:
                found.update(int(child) for child in handle.read().split())
    except OSError:
        pass
    return found


def _stop(child: "_Child", keep: set[int]) -> None:
    """Kill ``child``'s process group and the child, then every child of ours not in ``keep`` (orphans the
    call left behind, adopted by this subreaper), until none is left; reap them all."""
    try:
        os.killpg(child.pid, signal.SIGKILL)
    except OSError:  # no group left (or none of its own yet)
        pass
    if not child.reaped:
        try:
            os.kill(child.pid, signal.SIGKILL)
        except OSError:
            pass
        child.poll(block=True)
    for _ in range(100):
        strays = child_pids() - keep
        if not strays:
            return
        for stray in strays:
            try:
                os.kill(stray, signal.SIGKILL)
            except OSError:
                pass
        for stray in strays:
            try:
                os.waitpid(stray, 0)
            except ChildProcessError:
                pass


# -- weights through shared memory -------------------------------------------------------------------
class StateLayout:
    """Where each tensor of a state dict lies in a flat block of bytes: the original's names, dtypes and
    shapes, so the block is all an untrusted child hands back (no pickled objects)."""

    def __init__(self, state: dict):
        self.entries, offset = [], 0
        for name, value in state.items():
            nbytes = value.numel() * value.element_size()
            self.entries.append((name, value.dtype, tuple(value.shape), offset, nbytes))
            offset += -(-nbytes // ALIGN) * ALIGN
        self.nbytes = max(offset, ALIGN)

    def block(self) -> mmap.mmap:
        """Anonymous shared memory: a child forked after this call writes into the same pages."""
        return mmap.mmap(-1, self.nbytes)

    def _views(self, block):
        flat = torch.frombuffer(block, dtype=torch.uint8)
        for name, dtype, shape, offset, nbytes in self.entries:
            yield name, dtype, shape, flat[offset:offset + nbytes].view(dtype).view(shape)

    def write(self, state: dict, block) -> None:
        """Copy ``state`` into ``block``; :class:`ModelFailure` when its names, shapes or dtypes are not the
        original's."""
        names = [entry[0] for entry in self.entries]
        if list(state) != names:
            added, removed = sorted(set(state) - set(names))[:5], sorted(set(names) - set(state))[:5]
            raise ModelFailure(f"unlearning() changed the architecture: added {added}, removed {removed}")
        for name, dtype, shape, view in self._views(block):
            value = state[name]
            if tuple(value.shape) != shape:
                raise ModelFailure(f"unlearning() changed the shape of {name} from {shape} to {tuple(value.shape)}")
            if value.dtype != dtype:
                raise ModelFailure(f"unlearning() changed the dtype of {name} from {dtype} to {value.dtype}")
            view.copy_(value.detach())

    def read(self, block) -> dict:
        """The state dict in ``block`` (copied out of it)."""
        return {name: view.clone() for name, _, _, view in self._views(block)}


# -- forking a job's child -----------------------------------------------------------------------------
@contextmanager
def _forked(child_main: Callable[[int], int]) -> Iterator[tuple["_Child", int]]:
    """Fork a child that runs ``child_main(write_fd)`` and exits with the code it returns (70 if it
    raises); it dies with this worker and takes SIGTERM's default action. Yields the child and the pipe's
    read end, followed (:data:`_running`) until the block ends; the read end is closed then."""
    global _running
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        code = 70
        try:
            os.close(read_fd)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
            code = child_main(write_fd)
        finally:
            os._exit(code)
    os.close(write_fd)
    _running = child = _Child(pid)
    try:
        yield child, read_fd
    finally:
        os.close(read_fd)
        _running = None


# -- untrusted children --------------------------------------------------------------------------------
@dataclass
class Outcome:
    """How an untrusted child ended: ``how`` is "done" (it reported), "timeout" (stopped at the limit) or
    "died" (it ended without reporting); ``started``: whether its timed part began."""

    how: str
    started: bool = False
    error: str | None = None         # "done": the failure it reported (None: success)
    seconds: float = math.nan        # "done": from its start to its report, timed by this process
    exitcode: int | None = None      # "died": as multiprocessing reports it (negative: killed by that signal)


def run_untrusted(body: Callable[[Callable[[], None]], str | None], limits: Limits) -> Outcome:
    """Run ``body(started)`` in a forked child (see the module docstring): ``body`` calls ``started()``
    when its timed part begins and returns its failure in words, or None."""
    keep = child_pids()
    parent = os.getpid()
    with _forked(lambda fd: _untrusted_child(body, fd, limits, parent)) as (child, read_fd):
        try:
            os.setpgid(child.pid, child.pid)  # also done by the child: whichever runs first
        except OSError:
            pass
        try:
            return _follow(child, read_fd, limits.seconds)
        finally:
            _stop(child, keep)


def _untrusted_child(body, fd: int, limits: Limits, parent: int) -> int:
    write, dumps = os.write, json.dumps  # bound before any submission code can replace them

    def send(**message) -> None:
        data = (dumps(message) + "\n").encode()
        while data:
            data = data[write(fd, data):]

    def done(error) -> None:  # the one place an error's text is cut to its limit
        send(event="done", error=None if error is None else str(error)[:ERROR_LIMIT])

    try:
        os.setpgid(0, 0)
        if os.getppid() != parent:  # the worker died before we asked to die with it
            return 1
        _first_for_the_oom_killer()
        if limits.memory is not None:
            _limit_memory(limits.memory)
        torch.set_num_threads(_job_threads)
        error = body(lambda: send(event="start"))
        for stream in (sys.stdout, sys.stderr):  # the worker kills this process as soon as it reports
            try:
                stream.flush()
            except Exception:  # noqa: BLE001 -- a closed or replaced stream is the submission's business
                pass
        done(error)
    except BaseException:  # noqa: BLE001 -- before "start" this is the evaluator's own failure
        try:
            done(traceback.format_exc())
        except BaseException:  # noqa: BLE001
            return 70
    return 0


def _first_for_the_oom_killer() -> None:
    try:
        with open("/proc/self/oom_score_adj", "w") as handle:
            handle.write("1000")
    except OSError:
        pass


def _limit_memory(extra: int) -> None:
    """At most ``extra`` bytes of data beyond what this process holds now (``RLIMIT_DATA``, Linux: private
    writable memory, which is where tensors, arrays and Python objects live)."""
    if resource is None:
        return
    try:
        with open("/proc/self/status") as handle:
            held = next(int(line.split()[1]) * 1024 for line in handle if line.startswith("VmData:"))
        resource.setrlimit(resource.RLIMIT_DATA, (held + extra, held + extra))
    except (OSError, StopIteration, ValueError):
        pass  # not Linux: no limit


class _Child:
    """A forked child and, once reaped, its exit code (negative: the signal that killed it)."""

    def __init__(self, pid: int):
        self.pid, self.reaped, self.exitcode = pid, False, None

    def poll(self, block: bool = False) -> bool:
        """Whether it has ended (reaping it)."""
        if not self.reaped:
            try:
                done, status = os.waitpid(self.pid, 0 if block else os.WNOHANG)
            except ChildProcessError:
                done, status = self.pid, 0
            if done:
                self.reaped, self.exitcode = True, os.waitstatus_to_exitcode(status)
        return self.reaped


def _follow(child: _Child, fd: int, limit: float | None) -> Outcome:
    """Read the child's reports until it is done, runs past ``limit`` seconds from its start, or ends."""
    try:
        watch_exit = os.pidfd_open(child.pid)
    except (AttributeError, OSError):
        watch_exit = None  # no pidfd: poll
    pending, started = b"", None
    try:
        while True:
            wait = None
            if started is not None and limit is not None:
                wait = started + limit - time.perf_counter()
                if wait <= 0:
                    return Outcome("timeout", started=True)
            if child.reaped:
                wait = 0  # it ended: only read what it left in the pipe
            elif watch_exit is None:
                wait = 0.05 if wait is None else min(wait, 0.05)
            watched = [fd] if watch_exit is None or child.reaped else [fd, watch_exit]
            ready = select.select(watched, [], [], wait)[0]
            now = time.perf_counter()
            data = os.read(fd, 1 << 16) if fd in ready else b""
            if data:
                pending += data
                while b"\n" in pending:
                    line, pending = pending.split(b"\n", 1)
                    message = _parse(line)
                    if message.get("event") == "start" and started is None:
                        started = now
                    elif message.get("event") == "done":
                        seconds = now - started if started is not None else math.nan
                        error = message.get("error")
                        return Outcome("done", started is not None, None if error is None else str(error), seconds)
                if len(pending) > MESSAGE_LIMIT:
                    return Outcome("done", started is not None, "the submission's process sent a garbled report")
                continue
            if fd in ready or child.reaped:  # the pipe's end, or it ended and left nothing more to read
                child.poll()
                return Outcome("died", started is not None, exitcode=child.exitcode)
            if watch_exit is None or watch_exit in ready:
                child.poll()
    finally:
        if watch_exit is not None:
            os.close(watch_exit)


def _parse(line: bytes) -> dict:
    try:
        message = json.loads(line)
    except ValueError:
        return {}
    return message if isinstance(message, dict) else {}


# -- trusted children ----------------------------------------------------------------------------------
class ChildDied(RuntimeError):
    """A trusted child ended without a result; ``exitcode`` as multiprocessing reports it."""

    def __init__(self, exitcode: int | None):
        super().__init__(f"exit code {exitcode}")
        self.exitcode = exitcode


def run_trusted(fn: Callable, *args):
    """``fn(*args)`` in a forked child with the job's torch threads (on the job's device): its value, or its
    exception re-raised here (with the child's traceback as a note); :class:`ChildDied` if it ended
    without either."""
    with _forked(lambda fd: _trusted_child(fn, args, fd)) as (child, read_fd):
        with os.fdopen(read_fd, "rb", closefd=False) as pipe:
            data = pipe.read()
        child.poll(block=True)
    if not data:
        raise ChildDied(child.exitcode)
    ok, value = pickle.loads(data)
    if ok:
        return value
    raise value


def _trusted_child(fn: Callable, args: tuple, fd: int) -> int:
    torch.set_num_threads(_job_threads)
    try:
        payload = pickle.dumps((True, fn(*args)))
    except BaseException as error:  # noqa: BLE001 -- handed to the worker, which re-raises it
        payload = pickle.dumps((False, _portable(error)))
    with os.fdopen(fd, "wb") as out:
        out.write(payload)
    return 0


def _portable(error: BaseException) -> BaseException:
    """``error`` with its traceback as a note, or a RuntimeError holding the traceback if it cannot be pickled."""
    text = traceback.format_exc()
    try:
        error.add_note(f"in the worker's child process:\n{text}")
        pickle.dumps(error)
        return error
    except Exception:  # noqa: BLE001
        return RuntimeError(text)
