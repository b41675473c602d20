"""Meta-World's scripted experts behind the policy interface (`reset()`, `act(obs)`).

They read the privileged `sim_state` and drive the arm to success on nearly every task;
Gaussian action noise makes the data more diverse without hurting their success much
(std 0.1 left MT10 success unchanged in notes/measured-facts.md).
"""

from __future__ import annotations

import warnings

import numpy as np
from metaworld.policies import ENV_POLICY_MAP

# Meta-World warns on every expert construction that its gains may exceed [-1, 1]; we clip.
warnings.filterwarnings("ignore", message="Constant\\(s\\) may be too high", category=UserWarning)


class ScriptedExpert:
    """The scripted policy of one Meta-World task, with optional clipped Gaussian noise."""

    def __init__(self, task: str, noise: float = 0.0, seed: int = 0):
        if task not in ENV_POLICY_MAP:
            raise ValueError(f"no scripted expert for task {task!r}")
        if noise < 0:
            raise ValueError(f"noise must be >= 0, got {noise}")
        self.task = task
        self.noise = noise
        self._policy = ENV_POLICY_MAP[task]()
        self._rng = np.random.default_rng(seed)

    def reset(self, seed: int | None = None) -> None:
        if seed is not None:
            self._rng = np.random.default_rng(seed)

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        action = np.asarray(self._policy.get_action(np.asarray(obs["sim_state"], dtype=np.float64)), dtype=np.float32)
        if self.noise > 0:
            action = action + self._rng.normal(0.0, self.noise, size=action.shape).astype(np.float32)
        return np.clip(action, -1.0, 1.0)
