"""A trained policy as an MLflow PyTorch model, and `python -m orchestration.use` for it.

The model is the greedy policy: `predict` takes a batch of observations as the environment gives them
(CartPole: float32 (N, 4); Atari after our preprocessing: uint8 (N, 4, 84, 84)) and returns int64
actions (N,), argmax Q for DQN and the most likely action for A2C. `use` rolls it out on fresh
environments with the seeds of the trial's own evaluation, so with the same number of episodes
and epsilon it reproduces the trial's last `eval/episode_return_mean`.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch
from torch import nn

DESCRIPTION = "observations (N, *obs_shape) as the env gives them -> int64 greedy actions (N,)"


class GreedyPolicy(nn.Module):
    """argmax over the network's outputs (Q-values or policy logits)."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs).argmax(dim=-1)


def greedy_network(module) -> nn.Module:
    """The part of our RLModule that scores actions."""
    if hasattr(module, "q_net"):
        return module.q_net
    return nn.Sequential(module.policy_trunk, module.policy_head)


def export(module, observation_space):
    from mlflow.models import ModelSignature
    from mlflow.types import Schema, TensorSpec

    from orchestration.family import ModelExport

    policy = GreedyPolicy(copy.deepcopy(greedy_network(module))).cpu().eval().requires_grad_(False)
    dtype, shape = np.dtype(observation_space.dtype), tuple(observation_space.shape)
    example = np.stack([observation_space.sample() for _ in range(2)]).astype(dtype)
    signature = ModelSignature(inputs=Schema([TensorSpec(dtype, (-1, *shape))]),
                               outputs=Schema([TensorSpec(np.dtype(np.int64), (-1,))]))
    return ModelExport("pytorch", policy, signature, example, DESCRIPTION)


def make_env(env_id: str, render: bool = False):
    import gymnasium as gym

    from algorithms.rl.envs import is_atari, make_atari

    mode = "rgb_array" if render else None
    return make_atari(env_id, render_mode=mode) if is_atari(env_id) else gym.make(env_id, render_mode=mode)


def write_gif(frames: list[np.ndarray], path: Path, fps: int = 30, width: int = 320, max_frames: int = 1500) -> None:
    """Frames as an animated GIF (Pillow only), scaled to `width` and thinned to at most `max_frames`."""
    from PIL import Image

    step = max(1, -(-len(frames) // max_frames))
    images = []
    for frame in frames[::step]:
        image = Image.fromarray(frame)
        images.append(image.resize((width, max(1, round(image.height * width / image.width)))))
    images[0].save(path, save_all=True, append_images=images[1:], duration=int(1000 * step / fps), loop=0)


def use(model, run_params: dict, options, out_dir: Path) -> dict:
    """`options.episodes` evaluation episodes: the return mean with its 95% interval, and a GIF of the
    first episode."""
    from algorithms.rl.base import EVAL_SEED_OFFSET
    from algorithms.rl.evaluation import greedy_episodes, summarize

    env_id = run_params["env"]
    episodes = options.episodes or int(run_params.get("evaluation_episodes", 10))
    epsilon = float(run_params.get("evaluation_epsilon", 0.0)) if options.epsilon is None else options.epsilon
    seed = int(run_params.get("seed", 0)) if options.seed is None else options.seed
    envs = [make_env(env_id, render=i == 0 and options.video) for i in range(episodes)]
    frames: list = []
    try:
        def act(observations: np.ndarray) -> np.ndarray:
            return np.asarray(model.predict(observations))

        results = greedy_episodes(act, envs, [EVAL_SEED_OFFSET + 1000 * seed + i for i in range(episodes)],
                                  epsilon=epsilon, frames=frames if options.video else None)
    finally:
        for env in envs:
            env.close()
    summary = summarize(results)
    files = []
    if options.video and frames:
        path = out_dir / "episode.gif"
        write_gif(frames, path)
        files.append(path)
    ci = (f" [{summary['episode_return_mean_ci_low']:.4g}, {summary['episode_return_mean_ci_high']:.4g}] (95% CI)"
          if "episode_return_mean_ci_low" in summary else
          f" (range {summary['episode_return_min']:.4g} to {summary['episode_return_max']:.4g}; a CI needs 5 episodes)")
    text = (f"{env_id}: return mean {summary['episode_return_mean']:.4g}{ci} over {episodes} episodes, "
            f"epsilon {epsilon:g}" + (f"; first episode -> {files[0]}" if files else ""))
    return {"metrics": {f"eval/{k}": v for k, v in summary.items()}, "files": files, "summary": text}
