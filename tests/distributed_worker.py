"""The body of test_distributed.py, in its own module: spawned processes import it by name."""

from pathlib import Path

import torch
import torch.distributed as dist

IMPLS = ["reference", "foreach", "fused", "cpu"]
STEPS = 4


def _model(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4))


def _train(model, opt, rank, steps=STEPS):
    gen = torch.Generator().manual_seed(100 + rank)  # each rank its own batch
    for _ in range(steps):
        opt.zero_grad()
        model(torch.randn(5, 8, generator=gen)).square().mean().backward()
        opt.step()


def _full(model):
    return [p.full_tensor() if hasattr(p, "full_tensor") else p.detach().clone() for p in model.parameters()]


def _close(a, b, msg):
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y, rtol=1e-5, atol=1e-6, msg=msg)


def worker(rank, world, init_method, ckpt_dir, marks):
    """One rank. It marks ``marks/joined-RANK`` past the rendezvous and ``marks/checked-RANK``
    once every check passed, so the parent can tell where a native crash happened; a failure
    is printed here, since a process that exits with gloo's threads alive aborts and the
    parent would only see the signal."""
    import faulthandler
    import traceback

    faulthandler.enable()
    dist.init_process_group("gloo", init_method=init_method, rank=rank, world_size=world)
    (Path(marks) / f"joined-{rank}").touch()
    try:
        _checks(rank, ckpt_dir)
        dist.barrier()  # no collective still in flight when the group is torn down
        (Path(marks) / f"checked-{rank}").touch()
    except BaseException:
        traceback.print_exc()
        raise
    finally:
        dist.destroy_process_group()


def _checks(rank, ckpt_dir):
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict
    from torch.distributed.fsdp import fully_shard
    from torch.nn.parallel import DistributedDataParallel as DDP

    import adamkit.torch as ak

    torch.set_num_threads(1)
    kwargs = dict(lr=1e-2, weight_decay=0.1)
    for wrap in ("ddp", "fsdp2"):
        def make(seed=0, wrap=wrap):
            model = _model(seed)
            if wrap == "ddp":
                return DDP(model)
            fully_shard(model)
            return model

        peer = make()
        _train(peer, torch.optim.AdamW(peer.parameters(), **kwargs), rank)
        want = _full(peer)
        for impl in IMPLS:
            model = make()
            _train(model, ak.AdamW(model.parameters(), impl=impl, **kwargs), rank)
            _close(_full(model), want, f"{wrap} {impl}")
            model = make()  # L1 runs the C kernel on each local shard; the reference agrees
            _train(model, ak.AdamW(model.parameters(), impl=impl, decay="l1", **kwargs), rank)
            if impl == "reference":
                l1 = _full(model)
            _close(_full(model), l1, f"{wrap} {impl} l1")

    # A torch.distributed.checkpoint round trip: save after 2 steps, load, continue = not stopping.
    model = _model()
    fully_shard(model)
    opt = ak.AdamW(model.parameters(), decay="independent", **kwargs)
    _train(model, opt, rank, steps=2)
    model_sd, opt_sd = get_state_dict(model, opt)
    dcp.save({"model": model_sd, "optim": opt_sd}, checkpoint_id=ckpt_dir)
    _train(model, opt, rank, steps=2)
    want = _full(model)
    fresh = _model(seed=1)
    fully_shard(fresh)
    fresh_opt = ak.AdamW(fresh.parameters(), decay="independent", **kwargs)
    _train(fresh, fresh_opt, rank, steps=1)  # create state, so the loader has somewhere to put it
    model_sd, opt_sd = get_state_dict(fresh, fresh_opt)
    state = {"model": model_sd, "optim": opt_sd}
    dcp.load(state, checkpoint_id=ckpt_dir)
    set_state_dict(fresh, fresh_opt, model_state_dict=state["model"], optim_state_dict=state["optim"])
    assert fresh_opt.param_groups[0]["decay"] == "independent"
    _train(fresh, fresh_opt, rank, steps=2)
    _close(_full(fresh), want, "dcp resume")
