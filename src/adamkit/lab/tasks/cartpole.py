"""``cartpole``: REINFORCE with a baseline on gymnasium's CartPole-v1.

One training step is one episode: the policy (4-64-2 MLP, tanh) samples actions, and the
loss is ``-Σ_t log π(a_t | s_t) (G_t - b_t)``, where ``G_t`` is the discounted return
(γ = 0.99) from step t and the baseline ``b_t`` is the episode's mean return, the
advantages divided by their std. The metric is the mean return (episode length, at most
500): ``val`` over the last 20 training episodes, ``test`` over 5 fixed episodes of the
greedy policy (what compare ranks). A random policy scores about 22.
"""

import torch

from adamkit.lab.tasks.base import Problem, Task

GAMMA = 0.99


def episode(env, policy, seed=None, greedy=False, generator=None):
    """``(log-probabilities, rewards)`` of one episode."""
    state, _ = env.reset(seed=seed)
    log_probs, rewards, done = [], [], False
    weight = next(policy.parameters())
    while not done:
        logits = policy(torch.as_tensor(state, dtype=weight.dtype, device=weight.device))
        if greedy:
            action = int(logits.argmax())
        else:
            probs = torch.softmax(logits.float(), -1)
            action = int(torch.multinomial(probs, 1, generator=generator))
            log_probs.append(torch.log(probs[action]))
        state, reward, terminated, truncated, _ = env.step(action)
        rewards.append(reward)
        done = terminated or truncated
    return log_probs, rewards


class CartPole(Task):
    name = "cartpole"
    summary = "CartPole-v1 balancing, REINFORCE with a mean-return baseline, 4-64-2 policy"
    data_source = "gymnasium's CartPole-v1 simulator (no data files)"
    models = ("mlp",)
    metric_text = "return (max 500): val, the last 20 training episodes; test, 5 greedy episodes"
    primary = "return"
    higher_is_better = True
    baseline = "a random policy: return about 22"
    budget = 500
    quick_budget = 200
    evals = 10
    init = "xavier_uniform"
    nonlinearity = "tanh"
    lr = {"sgd": 0.01, "momentum": 0.002, "adam": 1e-3}  # Adam at 1e-2 solves it, then collapses
    weight_decay = {"l2": 1e-4, "l1": 1e-5, "decoupled": 1e-2, "independent": 1e-4}

    def setup(self, config, dtype, device):
        import gymnasium

        env = gymnasium.make("CartPole-v1")
        probe = gymnasium.make("CartPole-v1")
        generator = torch.Generator().manual_seed(config.seed)
        policy = torch.nn.Sequential(torch.nn.Linear(4, 64, dtype=dtype), torch.nn.Tanh(),
                                     torch.nn.Linear(64, 2, dtype=dtype))
        returns = []

        def loss(step):
            log_probs, rewards = episode(env, policy, seed=config.seed if step == 1 else None, generator=generator)
            returns.append(sum(rewards))
            g, discounted = 0.0, []
            for r in reversed(rewards):
                g = r + GAMMA * g
                discounted.append(g)
            advantage = torch.tensor(discounted[::-1], device=log_probs[0].device)
            advantage = (advantage - advantage.mean()) / (advantage.std() + 1e-8) if len(rewards) > 1 else advantage * 0
            return -(torch.stack(log_probs) * advantage).sum()

        @torch.no_grad()
        def evaluate():
            last = returns[-20:]
            greedy = [sum(episode(probe, policy, seed=10_000 + k, greedy=True)[1]) for k in range(5)]
            return {"val": {"return": sum(last) / len(last)}, "test": {"return": sum(greedy) / len(greedy)}}

        return Problem(policy, loss, evaluate)
