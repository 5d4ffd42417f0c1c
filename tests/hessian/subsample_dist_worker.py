"""Worker of the 2-process gloo test of the data-space Gram (importable by children)."""

from __future__ import annotations

import pickle

import numpy as np
import torch
import torch.distributed as dist
from test_subsample import _data, _mlp

from hessian.curvature.subsample import data_blocks

SPLIT = 35  # rank 0 holds points 0..34, rank 1 points 35..59


def run(rank, world, port, out_path):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=world)
    try:
        X, y = _data()
        lo, hi = (0, SPLIT) if rank == 0 else (SPLIT, X.shape[0])
        sb = data_blocks(_mlp(), torch.nn.CrossEntropyLoss(), (X[lo:hi], y[lo:hi]),
                         group=dist.group.WORLD)
        V = torch.as_tensor(np.random.default_rng(0).standard_normal((8 * sb.rows_per_index,
                                                                      3)))
        out = sb(np.array([1, 5, 20, 33, 40, 41, 50, 59])).matmat(V).numpy()
        with open(f"{out_path}.{rank}", "wb") as fh:
            pickle.dump(out, fh)
    finally:
        dist.destroy_process_group()
