"""adamkit.torch.param_groups: who is decayed, who is not, and the report."""

import torch

import adamkit.torch as ak


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = torch.nn.Embedding(10, 4)
        self.pos_emb = torch.nn.Parameter(torch.zeros(6, 4))
        self.conv = torch.nn.Conv1d(4, 4, 3)
        self.norm = torch.nn.LayerNorm(4)
        self.bn = torch.nn.BatchNorm1d(4)
        self.head = torch.nn.Linear(4, 2)
        self.scale = torch.nn.Parameter(torch.ones(()))
        self.frozen = torch.nn.Linear(2, 2)
        self.frozen.requires_grad_(False)


def test_split_and_report():
    net = Net()
    groups = ak.param_groups(net, weight_decay=0.1, no_decay=["pos_emb*"], names=True)
    decay, no_decay = groups
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert set(decay["param_names"]) == {"emb.weight", "conv.weight", "head.weight"}
    assert set(no_decay["param_names"]) == {"pos_emb", "conv.bias", "norm.weight", "norm.bias",
                                            "bn.weight", "bn.bias", "head.bias", "scale"}
    assert groups.counts == {"decay": (3, 40 + 48 + 8), "no_decay": (8, 24 + 4 + 8 + 8 + 2 + 1)}
    assert str(groups) == "decay: 3 tensors, 96 elements; no_decay: 8 tensors, 47 elements"


def test_groups_feed_any_optimizer_and_decay_only_weights():
    net = torch.nn.Linear(3, 2)
    opt = ak.AdamW(ak.param_groups(net, weight_decay=0.5), lr=0.1)
    ref = torch.optim.AdamW([{"params": [net.weight], "weight_decay": 0.5},
                             {"params": [net.bias], "weight_decay": 0.0}], lr=0.1)
    assert [g["weight_decay"] for g in opt.param_groups] == [g["weight_decay"] for g in ref.param_groups]
    torch_opt = torch.optim.AdamW(ak.param_groups(net, weight_decay=0.5, names=True))
    assert torch_opt.param_groups[0]["param_names"] == ["weight"]
