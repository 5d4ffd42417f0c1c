"""Worker for the 2-process gloo test (importable by spawned children)."""

from __future__ import annotations

import pickle

import torch
import torch.distributed as dist
from hessian_refs import data, mlp

import hessian.distributed as hd

N, SPLIT = 23, 13  # rank 0 gets 13 samples (batches 5, 5, 3), rank 1 gets 10 (batches 4, 4, 2)


def shard(rank):
    X, y = data("mlp", N)
    lo, hi = (0, SPLIT) if rank == 0 else (SPLIT, N)
    Xs, ys = X[lo:hi], y[lo:hi]
    bs = 5 if rank == 0 else 4
    return [(Xs[i:i + bs], ys[i:i + bs]) for i in range(0, len(Xs), bs)]


def run(rank, world, port, out_path):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=world)
    try:
        model, loss = mlp(), torch.nn.CrossEntropyLoss()
        local = shard(rank)
        eig = hd.top_eigenvalues(model, loss, local, k=2, rng=0, tol=1e-10)
        tr = hd.trace(model, loss, local, 30, rng=1)
        den = hd.density(model, loss, local, num_probes=3, num_steps=20, rng=2)
        ggn = hd.trace(model, loss, local, 30, rng=3, kind="ggn")
        seed = hd.shared_seed(None)
        result = dict(eig=eig.eigenvalues, eig_mv=eig.num_matvecs, trace=tr.value,
                      nodes=den.nodes, weights=den.weights, ggn=ggn.value, seed=seed)
        with open(f"{out_path}.{rank}", "wb") as fh:
            pickle.dump(result, fh)
    finally:
        dist.destroy_process_group()
