"""Probe (issue #20, one-off): CPU ms of each segment of an isolated kit-baseline job vs in-process; figures in
benchmarks/RESULTS.md, "Where isolation's ~53 ms per job goes".

    .venv/bin/python benchmarks/probes/isolation_segments.py [plain|freeze] [reps]
"""
import gc, mmap, os, struct, sys, time, json, multiprocessing
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from isolation_faults import in_worker, warm_worker  # noqa: E402


def worker(jobs, variant, reps, q):
    from unlearning_mock.mock_evaluator.engine import jobs as J, isolation as I
    warm_worker(jobs, variant)
    stamps = mmap.mmap(-1, 4096)
    pt = time.process_time
    def put(i, v): struct.pack_into("d", stamps, 8 * i, v)
    orig_child = I._untrusted_child
    def child(body, fd, limits, parent):
        put(0, pt())           # child CPU at entry (since fork)
        def wrapped(started):
            put(1, pt())       # after child setup
            def st():
                put(2, pt()); started()
            err = body(st)
            put(3, pt())       # after call + weights written
            return err
        return orig_child(wrapped, fd, limits, parent)
    I._untrusted_child = child
    orig_fresh = J._fresh_original
    rows = []
    for j in jobs[3:3 + reps]:
        p0 = pt()
        J._warm_for(j.context)
        block = J._layout(j.context).block()
        p1 = pt()
        out = I.run_untrusted(lambda started: J._call(j, block, started), j.limits)
        p2 = pt()
        w = J._layout(j.context).read(block)
        r = J._score(j, w, out.seconds, isolated=True)
        p3 = pt()
        c = struct.unpack_from("4d", stamps)
        rows.append(dict(parent_block=p1 - p0, parent_run_untrusted=p2 - p1, parent_read_score=p3 - p2,
                         child_entry=c[0], child_setup=c[1] - c[0], child_prepare=c[2] - c[1], child_call=c[3] - c[2]))
    here = []
    for j in jobs[3:3 + reps]:
        p0 = pt()
        blockb = bytearray(J._layout(j.context).nbytes)
        setting, net = J._fresh_original(j.context)
        from unlearning_mock.starter_kit.data import make_loaders
        loaders = make_loaders(setting.data, setting.batch_size, seed=j.seeds[0], dict_batches=setting.dict_batches)
        p1 = pt()
        J._call(j, blockb, lambda: None)
        p2 = pt()
        r = J._score(j, J._layout(j.context).read(blockb), 0.1, isolated=False)
        p3 = pt()
        here.append(dict(prepare=p1 - p0, prepare_and_call=p2 - p1, read_score=p3 - p2))
    q.put((rows, here))

if __name__ == "__main__":
    variant, (rows, here) = in_worker(worker, 30)
    for name, data in (("isolated", rows), ("here", here)):
        print(name, {k: round(1e3 * float(np.median([r[k] for r in data])), 1) for k in data[0]})
    print("load", os.getloadavg())
