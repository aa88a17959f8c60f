"""Probe (issue #20, one-off): CPU ms and minor page faults per kit-baseline job, isolated vs in-process, per
worker variant (plain, gc.freeze, huge pages); figures in benchmarks/RESULTS.md, "Where isolation's ~53 ms per
job goes".

    .venv/bin/python benchmarks/probes/isolation_faults.py [plain|freeze|collapse|freeze+collapse] [reps]
"""
import gc, math, multiprocessing, os, sys, time, json
from pathlib import Path
import numpy as np

def rollup():
    out = {}
    for line in open("/proc/self/smaps_rollup"):
        parts = line.split()
        if parts[0] in ("Rss:", "Anonymous:", "Pss:", "Shared_Clean:", "Private_Dirty:", "AnonHugePages:"):
            out[parts[0][:-1]] = int(parts[1]) // 1024
    return out

import resource
def collapse():
    import ctypes, re
    libc = ctypes.CDLL(None, use_errno=True)
    libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    ok = bad = 0
    for line in open("/proc/self/maps"):
        parts = line.split()
        if len(parts) >= 6 and parts[5] not in ("[heap]",):
            continue
        if "rw" not in parts[1]:
            continue
        lo, hi = (int(x, 16) for x in parts[0].split("-"))
        lo2 = (lo + (1 << 21) - 1) & ~((1 << 21) - 1); hi2 = hi & ~((1 << 21) - 1)
        if hi2 <= lo2:
            continue
        libc.madvise(lo2, hi2 - lo2, 14)  # MADV_HUGEPAGE
        if libc.madvise(lo2, hi2 - lo2, 25) == 0: ok += 1  # MADV_COLLAPSE
        else: bad += 1
    print("collapse ok", ok, "failed", bad, flush=True)

def cpu():
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime, c.ru_utime + c.ru_stime, s.ru_minflt, c.ru_minflt, s.ru_stime, c.ru_stime

def per(w0, w1, c0, c1, reps):
    d = [(b - a) / reps for a, b in zip(c0, c1)]
    return dict(wall=round((w1 - w0) / reps * 1e3, 1), cpu=round(d[0] * 1e3, 1), ccpu=round(d[1] * 1e3, 1),
                flt=round(d[2]), cflt=round(d[3]), sys=round(d[4] * 1e3, 1), csys=round(d[5] * 1e3, 1))

def warm_worker(jobs, variant):
    """Start this process as an evaluator's worker, run the first 3 jobs both ways, apply the variant."""
    from unlearning_mock.mock_evaluator.engine.worker import start_worker
    from unlearning_mock.mock_evaluator.engine import jobs as J
    start_worker(1, own_process=True)
    for j in jobs[:3]:
        J.run_job(j); J.run_job_here(j)
    if "freeze" in variant:
        gc.collect(); gc.freeze()
    if "collapse" in variant:
        collapse()


def worker(jobs, variant, reps, q):
    from unlearning_mock.mock_evaluator.engine import jobs as J
    warm_worker(jobs, variant)
    res = {"rss": rollup()}
    for mode in ("here", "isolated", "here", "isolated"):
        w0 = time.perf_counter(); c0 = cpu()
        for j in jobs[3:3 + reps]:
            r = (J.run_job if mode == "isolated" else J.run_job_here)(j)
            assert r.error is None, r.error
        c1 = cpu(); w1 = time.perf_counter()
        res.setdefault(mode, []).append(per(w0, w1, c0, c1, reps))
    # bare fork+exit cost
    c0 = cpu(); w0 = time.perf_counter()
    for _ in range(reps):
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
    c1 = cpu(); w1 = time.perf_counter()
    res["bare_fork"] = per(w0, w1, c0, c1, reps)
    q.put(res)

def in_worker(target, default_reps):
    """Run ``target(jobs, variant, reps, queue)`` in a spawned worker on kit-baseline digits jobs; its result."""
    from unlearning_mock.mock_evaluator.engine import jobs as J
    from unlearning_mock.mock_evaluator.engine.limits import Limits
    from unlearning_mock.mock_evaluator.evaluate import EvalConfig, Evaluation, seeds_for
    from unlearning_mock.mock_evaluator.method import method_from_spec
    variant = sys.argv[1] if len(sys.argv) > 1 else "plain"
    reps = int(sys.argv[2]) if len(sys.argv) > 2 else default_reps
    ev = Evaluation(EvalConfig(num_models=64, progress=False, submissions=()), log=lambda *_: None)
    method = method_from_spec("baseline", baseline_function=ev.setting.baseline)
    seeds = seeds_for(0, "unlearning", reps + 3)
    jobs = [J.UnlearningJob(ev.context, method, i, (seeds[i],), Limits()) for i in range(reps + 3)]
    ctx = multiprocessing.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=target, args=(jobs, variant, reps, q)); p.start()
    res = q.get(); p.join()
    return variant, res


sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

if __name__ == "__main__":
    variant, res = in_worker(worker, 40)
    print(variant, json.dumps(res))
    print("(wall ms, own cpu ms, children cpu ms) per job; load:", os.getloadavg())
