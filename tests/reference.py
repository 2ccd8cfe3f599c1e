"""Float64 NumPy references, written independently of adamkit.rules (plain loops, no sharing)."""

import numpy as np


class AdamRef:
    """Adam with the four decay modes; ``step(g, lr, eta)`` updates ``self.p`` in float64."""

    def __init__(self, p, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, decay="l2",
                 amsgrad=False, maximize=False):
        self.p = np.array(p, dtype=np.float64)
        self.m = np.zeros_like(self.p)
        self.v = np.zeros_like(self.p)
        self.vmax = np.zeros_like(self.p)
        self.t = 0
        self.b1, self.b2, self.eps, self.wd = beta1, beta2, eps, weight_decay
        self.decay, self.amsgrad, self.maximize = decay, amsgrad, maximize

    def step(self, grad, lr, eta=1.0):
        g = np.array(grad, dtype=np.float64) * (-1.0 if self.maximize else 1.0)
        self.t += 1
        if self.decay == "l2":
            g = g + self.wd * self.p
        elif self.decay == "l1":
            g = g + self.wd * np.sign(self.p)
        elif self.decay == "decoupled":
            self.p = self.p - lr * self.wd * self.p
        elif self.decay == "independent":
            self.p = self.p - eta * self.wd * self.p
        elif self.decay == "corrected":
            self.p = self.p - lr * eta * self.wd * self.p
        else:
            raise AssertionError(self.decay)
        self.m = self.b1 * self.m + (1.0 - self.b1) * g
        self.v = self.b2 * self.v + (1.0 - self.b2) * np.square(g)
        self.vmax = np.maximum(self.vmax, self.v)
        m_hat = self.m / (1.0 - self.b1**self.t)
        v_hat = (self.vmax if self.amsgrad else self.v) / (1.0 - self.b2**self.t)
        self.p = self.p - lr * m_hat / (np.sqrt(v_hat) + self.eps)
        return self.p


class SGDRef:
    """torch.optim.SGD's documented algorithm plus the decay modes, in float64."""

    def __init__(self, p, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0,
                 decay="l2", maximize=False):
        self.p = np.array(p, dtype=np.float64)
        self.buf = None
        self.mu, self.tau, self.nesterov = momentum, dampening, nesterov
        self.wd, self.decay, self.maximize = weight_decay, decay, maximize

    def step(self, grad, lr, eta=1.0):
        g = np.array(grad, dtype=np.float64) * (-1.0 if self.maximize else 1.0)
        if self.decay == "l2":
            g = g + self.wd * self.p
        elif self.decay == "l1":
            g = g + self.wd * np.sign(self.p)
        elif self.decay == "decoupled":
            self.p = self.p * (1.0 - lr * self.wd)
        elif self.decay == "independent":
            self.p = self.p * (1.0 - eta * self.wd)
        elif self.decay == "corrected":
            self.p = self.p * (1.0 - lr * eta * self.wd)
        else:
            raise AssertionError(self.decay)
        if self.mu:
            self.buf = g.copy() if self.buf is None else self.mu * self.buf + (1.0 - self.tau) * g
            g = g + self.mu * self.buf if self.nesterov else self.buf
        self.p = self.p - lr * g
        return self.p
