"""Initialize a whole model with one scheme from :mod:`adamkit.init`."""

import torch

from adamkit import init

_WEIGHTED = (torch.nn.Linear, torch.nn.modules.conv._ConvNd, torch.nn.Embedding, torch.nn.Bilinear)
_NORMS = (torch.nn.modules.batchnorm._NormBase, torch.nn.LayerNorm, torch.nn.GroupNorm, torch.nn.RMSNorm)


def _initializer(scheme, name):
    if callable(scheme):  # a user's function, e.g. torch.nn.init.orthogonal_
        return lambda t, generator=None, **options: scheme(t, **options)
    if scheme not in init.INITIALIZERS:
        raise ValueError(f"Invalid {name}={scheme!r}; expected a callable or one of "
                         f"{', '.join(map(repr, init.INITIALIZERS))}")
    return init.INITIALIZERS[scheme]


def _label(scheme):
    return scheme if isinstance(scheme, str) else getattr(scheme, "__name__", "custom")


def init_model(model, weights="he_normal", bias="zeros", *, seed=None, **options):
    """Apply ``weights`` to every Linear, Conv and Embedding weight and ``bias`` to their biases.

    Norm layers go back to weight 1, bias 0. ``options`` go to the weight initializer
    (``nonlinearity="relu"``, ``gain=``, ``truncated=True``...). One generator seeded by
    ``seed`` draws every layer in order, so the same seed gives the same model.
    Returns ``{module name: what was done}``.

    >>> net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.LayerNorm(8))
    >>> init_model(net, "xavier_uniform", seed=0)
    {'0': 'Linear: weight xavier_uniform, bias zeros', '1': 'LayerNorm: weight 1, bias 0'}
    """
    weight_init, bias_init = _initializer(weights, "weights"), _initializer(bias, "bias")
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    touched = {}
    for name, module in model.named_modules():
        kind = type(module).__name__
        if isinstance(module, _WEIGHTED):
            weight = module.weight
            gen = generator if weight.device.type == "cpu" else None
            weight_init(weight, generator=gen, **options)
            what = f"{kind}: weight {_label(weights)}"
            if getattr(module, "bias", None) is not None:
                bias_init(module.bias, generator=gen)
                what += f", bias {_label(bias)}"
            touched[name] = what
        elif isinstance(module, _NORMS) and getattr(module, "weight", None) is not None:
            with torch.no_grad():
                module.weight.fill_(1.0)
                if getattr(module, "bias", None) is not None:
                    module.bias.zero_()
            touched[name] = f"{kind}: weight 1, bias 0"
    return touched
