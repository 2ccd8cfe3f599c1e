"""DDP and FSDP2 (DTensor shards) on the CPU with gloo, two processes, against torch.optim.AdamW,
and a torch.distributed.checkpoint round trip (see distributed_worker.py).

One spawn runs every check, so the suite pays for process start-up once.
"""

import socket

import pytest
import torch.distributed as dist
import torch.multiprocessing as mp

from distributed_worker import worker


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(not dist.is_available(), reason="torch built without torch.distributed")
def test_ddp_fsdp2_and_checkpoint_with_gloo(tmp_path, monkeypatch):
    """On this 2-core machine gloo's rendezvous itself now and then aborts a process natively
    (inside init_process_group, before adamkit is imported). Such a start is retried, twice at
    most; a process that dies after every rank has joined fails the test at once."""
    monkeypatch.setenv("GLOO_SOCKET_IFNAME", "lo")  # loopback only: never a host's other interfaces
    for attempt in range(3):
        joined = tmp_path / f"joined-{attempt}"
        joined.mkdir()
        try:
            mp.spawn(worker, args=(2, f"tcp://127.0.0.1:{_free_port()}", str(tmp_path / f"ckpt-{attempt}"),
                                   str(joined)), nprocs=2)
            return
        except mp.ProcessExitedException:
            if len(list(joined.iterdir())) == 2 or attempt == 2:
                raise
