"""DDP and FSDP2 (DTensor shards) on the CPU with gloo, two processes, against torch.optim.AdamW,
and a torch.distributed.checkpoint round trip (see distributed_worker.py).

One spawn runs every check, so the suite pays for process start-up once.
"""

import pytest
import torch.distributed as dist
import torch.multiprocessing as mp

from distributed_worker import worker


@pytest.mark.skipif(not dist.is_available(), reason="torch built without torch.distributed")
def test_ddp_fsdp2_and_checkpoint_with_gloo(tmp_path):
    mp.spawn(worker, args=(2, str(tmp_path / "init"), str(tmp_path / "ckpt")), nprocs=2)
