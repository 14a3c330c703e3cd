"""hnswlib on the data ann_bench wrote: build time, then single-thread QPS and recall@10 per ef.

Called by `cargo run --release -p embedb-ann --example ann_bench -- --hnswlib`, which writes
base.fvecs, query.fvecs and gt.ivecs (top-10 row ids) into DIR and runs this script from a venv
with hnswlib and numpy installed.

usage: hnswlib_bench.py DIR SPACE(l2|cosine|ip) M EF_CONSTRUCTION EF1,EF2,...
"""
import os
import sys
import time

import hnswlib
import numpy as np


def read_vecs(path, dtype):
    raw = np.fromfile(path, dtype=np.int32)
    dims = int(raw[0])
    rows = raw.reshape(-1, dims + 1)[:, 1:]
    return np.ascontiguousarray(rows.view(dtype))


def main():
    data_dir, space, m, ef_construction, efs = sys.argv[1:6]
    base = read_vecs(os.path.join(data_dir, "base.fvecs"), np.float32)
    queries = read_vecs(os.path.join(data_dir, "query.fvecs"), np.float32)
    truth = read_vecs(os.path.join(data_dir, "gt.ivecs"), np.int32)
    k = truth.shape[1]

    index = hnswlib.Index(space=space, dim=base.shape[1])
    index.init_index(max_elements=len(base), M=int(m), ef_construction=int(ef_construction))
    start = time.perf_counter()
    index.add_items(base, np.arange(len(base)), num_threads=os.cpu_count())
    build = time.perf_counter() - start
    print(f"build: hnswlib {build:.2f} s ({len(base) / build:.0f} vec/s)")
    print("| ef_search | hnswlib QPS | hnswlib recall@10 |")
    print("|---:|---:|---:|")
    index.set_num_threads(1)
    for ef in (int(e) for e in efs.split(",")):
        index.set_ef(max(ef, k))
        for q in queries[:20]:
            index.knn_query(q, k=k)
        start = time.perf_counter()
        found = [index.knn_query(q, k=k)[0][0] for q in queries]
        secs = time.perf_counter() - start
        hits = sum(len(set(f.tolist()) & set(t.tolist())) for f, t in zip(found, truth))
        print(f"| {ef} | {len(queries) / secs:.0f} | {hits / (k * len(queries)):.4f} |")


if __name__ == "__main__":
    main()
