"""Probe (issue #20, one-off): the least a fork per call can cost on this machine, for the kit baseline's digits call.

In one spawned worker (warmed as the evaluator's are), per job, CPU ms of this process plus its reaped children:

* ``here``      -- the previous pool's way: fresh copy + loaders, the call, weights out, figures (``run_job_here``);
* ``isolated``  -- the shipped way (``run_job``: fork, child set-up and limits, pipe reports, follow, stop, figures);
* ``floor``     -- a bare fork around the same ``_call``: no set-up, no limits, no pipe, no follow; the parent
                   waits, reads the weights and computes the figures as ``here`` does;
* ``prebuilt``  -- ``floor`` with the fresh copy built once in the parent before the loop (a child's writes are
                   its own, so one pristine copy serves every fork): the child makes loaders and calls;
* ``zygote``    -- ``prebuilt``, but the children are forked by a zygote forked once from the worker: the worker
                   only scores, and no fork write-protects its pages;
* ``bare``      -- fork + ``_exit`` + reap, nothing else.

    .venv/bin/python benchmarks/probes/isolation_floor.py [reps]
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from isolation_faults import cpu, in_worker, per, warm_worker  # noqa: E402


def worker(jobs, variant, reps, q):
    from unlearning_mock.mock_evaluator.engine import jobs as J

    warm_worker(jobs, "plain")
    ctx = jobs[0].context
    layout = J._layout(ctx)
    setting, pristine = J._fresh_original(ctx)

    def child_then_score(job, child):
        block = layout.block()
        pid = os.fork()
        if pid == 0:
            try:
                child(job, block)
            finally:
                os._exit(0)
        os.waitpid(pid, 0)
        J._score(job, layout.read(block), 0.1, isolated=True)

    def floor_child(job, block):
        J._call(job, block, lambda: None)

    def prebuilt_child(job, block):
        J._fresh_original = lambda context: (setting, pristine)   # in this child only: it dies with the call
        J._call(job, block, lambda: None)

    def zygote_mode(jobs_here):
        """A zygote forked from this worker (after the pristine copy is built) forks each call's child; this
        worker only scores, so its own pages stay private between jobs."""
        block = layout.block()
        from_worker, to_zygote = os.pipe()
        from_zygote, to_worker = os.pipe()
        zygote = os.fork()
        if zygote == 0:
            os.close(to_zygote); os.close(from_zygote)
            while True:
                data = os.read(from_worker, 4)
                if len(data) < 4:
                    os._exit(0)
                pid = os.fork()
                if pid == 0:
                    try:
                        prebuilt_child(jobs_here[int.from_bytes(data, "little")], block)
                    finally:
                        os._exit(0)
                os.waitpid(pid, 0)
                os.write(to_worker, b"d")
        os.close(from_worker); os.close(to_worker)
        for index, job in enumerate(jobs_here):
            os.write(to_zygote, index.to_bytes(4, "little"))
            os.read(from_zygote, 1)
            J._score(job, layout.read(block), 0.1, isolated=True)
        os.close(to_zygote); os.close(from_zygote)
        os.waitpid(zygote, 0)

    modes = {
        "here": lambda job: J.run_job_here(job),
        "isolated": lambda job: J.run_job(job),
        "floor": lambda job: child_then_score(job, floor_child),
        "prebuilt": lambda job: child_then_score(job, prebuilt_child),
    }
    res = {}
    for _ in range(2):
        w0, c0 = time.perf_counter(), cpu()
        zygote_mode(jobs[3:3 + reps])
        res.setdefault("zygote", []).append(per(w0, time.perf_counter(), c0, cpu(), reps))
        for mode, run in modes.items():
            w0, c0 = time.perf_counter(), cpu()
            for job in jobs[3:3 + reps]:
                run(job)
            res.setdefault(mode, []).append(per(w0, time.perf_counter(), c0, cpu(), reps))
    w0, c0 = time.perf_counter(), cpu()
    for _ in range(reps):
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
    res["bare"] = [per(w0, time.perf_counter(), c0, cpu(), reps)]
    q.put(res)


if __name__ == "__main__":
    reps = int(sys.argv[1]) if len(sys.argv) > 1 else 40
    sys.argv[1:] = ["plain", str(reps)]
    _, res = in_worker(worker, reps)
    print("load", os.getloadavg())
    for mode, rows in res.items():
        print(f"{mode:9s}", "  ".join(f"cpu {r['cpu'] + r['ccpu']:6.1f} ms (own {r['cpu']:5.1f}, children {r['ccpu']:5.1f}; "
                                       f"sys {r['sys'] + r['csys']:4.1f}; faults {r['flt']:5d}+{r['cflt']:5d}; wall {r['wall']:6.1f})"
                                       for r in rows))
