"""Meta-World's scripted experts behind the policy interface (`reset()`, `act(obs)`).

They read the privileged `sim_state` and drive the arm to success on nearly every task;
Gaussian action noise makes the data more diverse without hurting their success much
(std 0.1 left MT10 success unchanged in notes/measured-facts.md).

Exploration makes play data rather than demonstrations: at every `segment`-step boundary,
with probability `explore`, the expert is replaced for the next segment by one uniform
random action held constant. Held actions move the arm somewhere the demonstrations never
go (per-step noise averages out), and the expert then recovers from there, so an episode
mixes purposeful and off-task motion and both successes and failures. That is what an
action-conditioned world model needs to learn that actions matter: with demonstrations
alone, the frame and the instruction already predict the next frame.
"""

from __future__ import annotations

import warnings

import numpy as np
from metaworld.policies import ENV_POLICY_MAP

# Meta-World warns on every expert construction that its gains may exceed [-1, 1]; we clip.
warnings.filterwarnings("ignore", message="Constant\\(s\\) may be too high", category=UserWarning)


class ScriptedExpert:
    """The scripted policy of one Meta-World task, with optional clipped Gaussian noise."""

    def __init__(self, task: str, noise: float = 0.0, seed: int = 0, explore: float = 0.0, segment: int = 16):
        if task not in ENV_POLICY_MAP:
            raise ValueError(f"no scripted expert for task {task!r}")
        if noise < 0:
            raise ValueError(f"noise must be >= 0, got {noise}")
        if not 0.0 <= explore <= 1.0:
            raise ValueError(f"explore must be a probability in [0, 1], got {explore}")
        if segment < 1:
            raise ValueError(f"segment must be >= 1 step, got {segment}")
        self.task = task
        self.noise, self.explore, self.segment = noise, explore, segment
        self._policy = ENV_POLICY_MAP[task]()
        self.reset(seed)

    def reset(self, seed: int | None = None) -> None:
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        self._steps, self._held = 0, None

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        if self.explore > 0 and self._steps % self.segment == 0:
            explore_now = self._rng.random() < self.explore
            self._held = self._rng.uniform(-1.0, 1.0, size=4).astype(np.float32) if explore_now else None
        self._steps += 1
        if self._held is not None:
            return self._held.copy()
        action = np.asarray(self._policy.get_action(np.asarray(obs["sim_state"], dtype=np.float64)), dtype=np.float32)
        if self.noise > 0:
            action = action + self._rng.normal(0.0, self.noise, size=action.shape).astype(np.float32)
        return np.clip(action, -1.0, 1.0)
