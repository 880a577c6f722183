"""Data generator and hnswlib peer for bench/Kiln.Bench.Vectors (Debian's python3-hnswlib, one thread).

  hnswlib_peer.py data DIR N DIM LATENT QUERIES SEED   base.f32, queries.f32, gt.i32 (exact top-10, L2)
  hnswlib_peer.py build DIR M EF_CONSTRUCTION [THREADS] builds and saves hnswlib.bin; prints {"build_seconds": s,
                                                        "build_cpu_seconds": s}
  hnswlib_peer.py subset SRC DST N                      the first N base vectors of SRC and its queries into DST, with
                                                        their exact top-10 (base.f32 is written before the ground truth)
  hnswlib_peer.py query DIR EF[,EF...]                  prints one {"ef", "recall", "qps", "qps_single"} line per ef
                                                        (qps: all queries in one knn_query call; qps_single: one call each;
                                                        cpu_qps, cpu_qps_single: the same per second of the thread's CPU time;
                                                        sys_percent_single, faults_single, involuntary_single: the thread's
                                                        system time share, page faults and preemptions of the calls each);
                                                        one untimed pass at the largest ef comes first (warm-up)
  hnswlib_peer.py serve DIR                             the index loaded once; each "EF START COUNT" line read from
                                                        standard input runs those queries (one call each, then one
                                                        call for all) and prints one JSON line of their times
"""
import json
import resource
import sys
import time

import numpy as np


def data(d, n, dim, latent, queries, seed):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((latent, dim)).astype(np.float32)

    def gen(m):
        z = rng.standard_normal((m, latent)).astype(np.float32)
        return (z @ a + 0.1 * rng.standard_normal((m, dim)).astype(np.float32)).astype(np.float32)

    x = gen(n)
    q = gen(queries)
    x.tofile(f"{d}/base.f32")
    q.tofile(f"{d}/queries.f32")
    exact_top10(x, q).tofile(f"{d}/gt.i32")


def subset(src, dst, n):
    meta = json.load(open(f"{src}/meta.json"))
    x = load(src, "base.f32", meta["dim"])[:n]
    q = load(src, "queries.f32", meta["dim"])
    x.tofile(f"{dst}/base.f32")
    q.tofile(f"{dst}/queries.f32")
    json.dump({"n": n, "dim": meta["dim"], "queries": len(q)}, open(f"{dst}/meta.json", "w"))
    exact_top10(x, q).tofile(f"{dst}/gt.i32")


def exact_top10(x, q):
    xx = (x * x).sum(axis=1)
    gt = np.empty((len(q), 10), dtype=np.int32)
    for s in range(0, len(q), 100):
        qs = q[s:s + 100]
        dist = xx[None, :] - 2 * qs @ x.T
        part = np.argpartition(dist, 10, axis=1)[:, :10]
        order = np.take_along_axis(dist, part, axis=1).argsort(axis=1)
        gt[s:s + 100] = np.take_along_axis(part, order, axis=1)
    return gt


def load(d, name, dim):
    return np.fromfile(f"{d}/{name}", dtype=np.float32).reshape(-1, dim)


def build(d, m, efc, threads=1):
    import hnswlib
    meta = json.load(open(f"{d}/meta.json"))
    x = load(d, "base.f32", meta["dim"])
    index = hnswlib.Index(space="l2", dim=meta["dim"])
    index.init_index(max_elements=len(x), M=m, ef_construction=efc, random_seed=100)
    index.set_num_threads(threads)
    # Wall time and the process's CPU time (user + sys: every thread's, so also right with THREADS > 1); on a loaded
    # machine the CPU time is the figure to compare.
    t, c = time.perf_counter(), time.process_time()
    index.add_items(x, np.arange(len(x)), num_threads=threads)
    seconds, cpu = time.perf_counter() - t, time.process_time() - c
    index.save_index(f"{d}/hnswlib.bin")
    print(json.dumps({"build_seconds": seconds, "build_cpu_seconds": cpu}))


def query(d, efs):
    index, q, gt = open_index(d)
    # One untimed pass over the queries at the largest ef first, so that the first timed ef is not the one that finds
    # the freshly loaded index cold.
    index.set_ef(max(efs))
    index.knn_query(q, k=10, num_threads=1)
    for ef in efs:
        print(json.dumps(measure(index, q, gt, ef)), flush=True)


def serve(d):
    """The index loaded once; each input line "EF START COUNT" runs queries START..START+COUNT at EF, one knn_query call
    each and then all in one call, and prints their times (wall and this thread's CPU), the true neighbours found by the
    one call, and the thread's system time, page faults and preemptions of the calls each."""
    index, q, gt = open_index(d)
    for line in sys.stdin:
        if not line.strip():
            continue
        ef, start, count = map(int, line.split())
        index.set_ef(ef)
        chunk = q[start:start + count]
        u = resource.getrusage(resource.RUSAGE_THREAD)
        t, c = time.perf_counter(), time.thread_time()
        for i in range(count):
            index.knn_query(chunk[i:i + 1], k=10, num_threads=1)
        wall_single, cpu_single = time.perf_counter() - t, time.thread_time() - c
        v = resource.getrusage(resource.RUSAGE_THREAD)
        t, c = time.perf_counter(), time.thread_time()
        labels, _ = index.knn_query(chunk, k=10, num_threads=1)
        wall_batch, cpu_batch = time.perf_counter() - t, time.thread_time() - c
        hits = sum(len(set(labels[i]) & set(gt[start + i])) for i in range(count))
        print(json.dumps({"wall_single": wall_single, "cpu_single": cpu_single, "wall_batch": wall_batch,
                          "cpu_batch": cpu_batch, "hits": int(hits), "sys_single": v.ru_stime - u.ru_stime,
                          "faults_single": (v.ru_minflt - u.ru_minflt) + (v.ru_majflt - u.ru_majflt),
                          "involuntary_single": v.ru_nivcsw - u.ru_nivcsw}), flush=True)


def open_index(d):
    import hnswlib
    meta = json.load(open(f"{d}/meta.json"))
    q = load(d, "queries.f32", meta["dim"])
    gt = np.fromfile(f"{d}/gt.i32", dtype=np.int32).reshape(-1, 10)
    index = hnswlib.Index(space="l2", dim=meta["dim"])
    index.load_index(f"{d}/hnswlib.bin")
    index.set_num_threads(1)
    return index, q, gt


def measure(index, q, gt, ef):
    index.set_ef(ef)
    # Wall time and this thread's CPU time (knn_query with num_threads=1 runs in the calling thread).
    t, c = time.perf_counter(), time.thread_time()
    labels, _ = index.knn_query(q, k=10, num_threads=1)
    seconds, cpu = time.perf_counter() - t, time.thread_time() - c
    # The same queries one knn_query call each, as a server answering one request at a time would call it.
    u = resource.getrusage(resource.RUSAGE_THREAD)
    t, c = time.perf_counter(), time.thread_time()
    for i in range(len(q)):
        index.knn_query(q[i:i + 1], k=10, num_threads=1)
    single, single_cpu = time.perf_counter() - t, time.thread_time() - c
    v = resource.getrusage(resource.RUSAGE_THREAD)
    recall = np.mean([len(set(labels[i]) & set(gt[i])) / 10 for i in range(len(q))])
    return {"ef": ef, "recall": float(recall), "qps": len(q) / seconds, "qps_single": len(q) / single,
            "cpu_qps": len(q) / cpu, "cpu_qps_single": len(q) / single_cpu,
            "sys_percent_single": 100 * (v.ru_stime - u.ru_stime) / single_cpu,
            "faults_single": (v.ru_minflt - u.ru_minflt) + (v.ru_majflt - u.ru_majflt),
            "involuntary_single": v.ru_nivcsw - u.ru_nivcsw}


if __name__ == "__main__":
    cmd, d = sys.argv[1], sys.argv[2]
    if cmd == "data":
        n, dim, latent, queries, seed = map(int, sys.argv[3:8])
        data(d, n, dim, latent, queries, seed)
        json.dump({"n": n, "dim": dim, "queries": queries}, open(f"{d}/meta.json", "w"))
    elif cmd == "build":
        build(d, int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]) if len(sys.argv) > 5 else 1)
    elif cmd == "subset":
        subset(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif cmd == "query":
        query(d, [int(e) for e in sys.argv[3].split(",")])
    elif cmd == "serve":
        serve(d)
