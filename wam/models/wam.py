"""The World Action Model: a pretrained world model that also acts.

Stage two of the recipe. Video prediction is the backbone; the action comes out of it by
inverse dynamics:

1. **Imagine.** The world model runs with its action input hidden (the "unknown action"
   token it learned in pretraining on a share of windows): from the recent frames, state
   and task text it predicts the next latent frame, i.e. what happens next when the task
   is being done. Action-free video alone teaches this.
2. **Act.** The `action_chunk` head reads the actions that reach that predicted future: it
   sees the latent action between the current frame and the imagined next one (the
   pretrained inverse-dynamics encoder, which already describes motion), the transformer's
   output tokens for the current frame, and the robot state, and outputs the next H real
   control actions (an action chunk, H = 8 by default: 0.1 s at 80 Hz).
3. **Align.** The `action_encoder` maps the real actions taken between two frames into the
   world model's action input, trained to agree with the latent action inferred from those
   frames and to predict the next frame when used as the action input. Afterwards the same
   network is an action-conditioned world model: the dream dojo steps it with real actions.

The joint objective on labelled robot windows (`forward`), with the weights of `WAMConfig`:

    action_weight * L1(action_chunk, expert chunk)                     the policy
  + latent_weight * MSE(next latent | action hidden)                   the imagined future
  + latent_weight * MSE(next latent | encoded real actions)            action-conditioned dynamics
  + align_weight  * MSE(action_encoder(actions), latent action)        one action space
  + state_weight  * MSE(next state), both passes
  + reward_weight * MSE(reward / 10) + success_weight * BCE(success)   what the dream dojo scores with

Labelled play windows (`batch["play"]`: exploration, failures, anything that is not a
demonstration) add the action-conditioned terms only, with the same weights: they teach
what actions do and what success looks like, and never what the policy should do.

The `reward` and `success` heads read the conditioning token of the action-conditioned
pass: given the frames so far and the action taken, the reward received and whether the
task is done at the next frame (Meta-World rewards lie in [0, 10], hence the scale).

Latent MSEs sit near 1e-3 while the action L1 sits near 0.1, so `latent_weight` = 100
puts them on the same footing, so that a few demonstrations' action loss does not drown
the dynamics in the shared backbone. Action-free video windows mixed into a batch add the pretraining loss,
also weighted by `latent_weight`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F

REWARD_SCALE = 10.0  # Meta-World rewards lie in [0, 10]
from torch import nn

from wam.models.dims import FROM_DATA, require_from_data
from wam.models.normalizer import Normalizer
from wam.models.world_model import WorldModel, WorldModelConfig


@dataclass(frozen=True)
class WAMConfig:
    world: WorldModelConfig = field(default_factory=WorldModelConfig)
    chunk: int = 8  # H: control actions predicted at once
    robot_action_dim: int = FROM_DATA  # the robot action size: set from the data
    stride: int = 2  # control steps between model frames (the pretraining stride)
    hidden: int = 512
    action_weight: float = 1.0
    latent_weight: float = 100.0
    align_weight: float = 1.0
    state_weight: float = 10.0
    reward_weight: float = 1.0
    success_weight: float = 1.0
    # The action-conditioned pass (the dream's simulator) without the task text: physics does not depend on the
    # instruction, and with the text there the dream can predict a demonstration's motion from it and ignore the
    # actions. The reward and success heads still see the task in the frames (every task has its own scene).
    task_free_dynamics: bool = False
    normalize: str = "none"  # how the data's stats scale state and action (wam/models/normalizer.py); set by finetune

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "WAMConfig":
        data = dict(data)
        data["world"] = WorldModelConfig.from_dict(data["world"])
        return cls(**data)


class WorldActionModel(nn.Module):
    kind = "wam"

    def __init__(self, config: WAMConfig, world: WorldModel | None = None):
        super().__init__()
        require_from_data("WorldActionModel", robot_action_dim=config.robot_action_dim)
        self.config = config
        self.world = world if world is not None else WorldModel(config.world)
        wc, d = config.world, config.world.d_model
        self.action_encoder = nn.Sequential(  # real actions between two frames -> the world model's action input
            nn.Linear(config.stride * config.robot_action_dim, config.hidden), nn.SiLU(),
            nn.Linear(config.hidden, config.hidden), nn.SiLU(),
            nn.Linear(config.hidden, wc.action_dim), nn.Tanh(),
        )
        self.action_chunk = nn.Sequential(  # inverse dynamics: (now, imagined next) -> the actions between
            nn.Linear(wc.action_dim + 2 * d + wc.state_dim, config.hidden), nn.SiLU(),
            nn.Linear(config.hidden, config.hidden), nn.SiLU(),
            nn.Linear(config.hidden, config.chunk * config.robot_action_dim),
        )
        # The real actions also reach the model directly, past the 8-number latent-action bottleneck: pretraining's
        # latent actions carry little (their spread is small) and a dream must follow the arm. `robot_action_in`
        # adds them to every token of their frame; `robot_state_skip` adds a linear function of them to the next
        # state (the hand moves by about 0.6% of the action per control step: a linear fit on the play data explains
        # 95% of the hand's motion). Both zero-initialised: a WAM starts as its pretrained world model, and WAMs
        # saved without them load unchanged.
        actions_in = config.stride * config.robot_action_dim
        self.robot_action_in = nn.Linear(actions_in, d)
        self.robot_state_skip = nn.Linear(actions_in, wc.state_dim)
        for layer in (self.robot_action_in, self.robot_state_skip):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)
        self.reward = nn.Linear(d, 1)  # reward received on arriving at the next frame, / REWARD_SCALE
        self.success = nn.Linear(d, 1)  # logit: the next frame satisfies the task
        # The robot data's statistics: every public method takes and returns the data's units, the networks
        # inside see normalised values. Identity until `finetune` sets them (older WAMs load as identity).
        self.state_norm = Normalizer(wc.state_dim)
        self.action_norm = Normalizer(config.robot_action_dim)

    def normalized(self, batch: dict) -> dict:
        """A labelled batch with state, actions and action chunks in normalised units."""
        out = dict(batch)
        out["state"] = self.state_norm.normalize(batch["state"])
        out["action"] = self.action_norm.normalize(batch["action"])
        if "action_chunk" in batch:
            out["action_chunk"] = self.action_norm.normalize(batch["action_chunk"])
        return out

    # -- acting ---------------------------------------------------------------------------------
    def imagine_and_act(
        self,
        latents: torch.Tensor,  # (B, T, C, h, w)
        text_ids: torch.Tensor,  # (B, L)
        state: torch.Tensor,  # (B, T, S) in the data's units
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """For every frame: the imagined next latent, next state, and the action chunk (B, T, H, A), in the data's units."""
        next_latents, next_state, chunk = self._imagine_and_act(latents, text_ids, self.state_norm.normalize(state))
        return next_latents, self.state_norm.denormalize(next_state), self.action_norm.denormalize(chunk)

    def _imagine_and_act(self, latents: torch.Tensor, text_ids: torch.Tensor, state: torch.Tensor):
        """`imagine_and_act` in normalised units."""
        b, t = latents.shape[:2]
        x = self.world.features(latents, None, text_ids, state)  # (B, T, n+1, d), actions hidden
        next_latents, next_state = self.world.heads(x, latents, state)
        imagined_motion = torch.tanh(self.world.latent_actions(latents.flatten(0, 1), next_latents.flatten(0, 1)))
        inputs = torch.cat([imagined_motion.view(b, t, -1), x[:, :, -1], x[:, :, :-1].mean(2), state], dim=-1)
        chunk = self.action_chunk(inputs).view(b, t, self.config.chunk, self.config.robot_action_dim)
        return next_latents, next_state, chunk

    @torch.no_grad()
    def act(self, latents: torch.Tensor, text_ids: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """The action chunk after the last frame of each context: (B, H, A) in the data's units, clipped to the
        range the training actions spanned ([-1, 1] for a WAM saved before normalisation)."""
        _, _, chunk = self.imagine_and_act(latents, text_ids, state)
        return self.action_norm.clip(chunk[:, -1])

    # -- the action-conditioned world model ------------------------------------------------------
    def encode_actions(self, actions: torch.Tensor) -> torch.Tensor:
        """Normalised real actions between frames (..., stride, A) -> world-model action inputs (..., action_dim)."""
        return self.action_encoder(actions.flatten(-2))

    def step(
        self,
        latents: torch.Tensor,  # (B, T, C, h, w)
        actions: torch.Tensor,  # (B, T, stride, A): real actions taken at each frame
        text_ids: torch.Tensor,  # (B, L)
        state: torch.Tensor,  # (B, T, S)
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """After every frame, given its real actions: next latent, next state, reward, success logit (data's units)."""
        x, next_latents, next_state = self._conditioned(latents, self.action_norm.normalize(actions), text_ids,
                                                        self.state_norm.normalize(state))
        condition = x[:, :, -1]
        reward = self.reward(condition).squeeze(-1) * REWARD_SCALE
        return next_latents, self.state_norm.denormalize(next_state), reward, self.success(condition).squeeze(-1)

    def _conditioned(self, latents, actions, text_ids, state, encoded=None):
        """The action-conditioned pass in normalised units: output tokens, next latents and next states after every frame."""
        flat = actions.flatten(-2)
        encoded = self.encode_actions(actions) if encoded is None else encoded
        if self.config.task_free_dynamics:
            text_ids = torch.zeros_like(text_ids[:, :1])  # padding only: the text encoder's constant "no text"
        x = self.world.features(latents, encoded, text_ids, state, frame_bias=self.robot_action_in(flat))
        next_latents, next_state = self.world.heads(x, latents, state)
        return x, next_latents, next_state + self.robot_state_skip(flat)

    # -- training ---------------------------------------------------------------------------------
    def conditioned_losses(self, batch: dict) -> dict[str, torch.Tensor]:
        """The action-conditioned pass on labelled windows (normalised, see `normalized`): align, dynamics, state,
        reward and success losses."""
        latents, state, text = batch["latents"], batch["state"], batch["text_ids"]
        now, following = latents[:, :-1], latents[:, 1:]
        encoded = self.encode_actions(batch["action"][:, :-1])  # (B, W-1, action_dim)
        with torch.no_grad():
            target_motion = torch.tanh(self.world.latent_actions(now.flatten(0, 1), following.flatten(0, 1))).view_as(encoded)
        x, conditioned, conditioned_state = self._conditioned(now, batch["action"][:, :-1], text, state[:, :-1], encoded)
        losses = {"align": F.mse_loss(encoded, target_motion), "dynamics": F.mse_loss(conditioned, following),
                  "state": F.mse_loss(conditioned_state, state[:, 1:])}
        losses["reward"] = losses["success"] = torch.zeros((), device=latents.device)
        if "reward" in batch:
            scored = batch["reward_mask"][:, 1:].float()  # (B, W-1): episodes that recorded rewards
            count = scored.sum().clamp(min=1.0)
            reward_error = (self.reward(x[:, :, -1]).squeeze(-1) - batch["reward"][:, 1:] / REWARD_SCALE).pow(2)
            losses["reward"] = (reward_error * scored).sum() / count
            success_error = F.binary_cross_entropy_with_logits(
                self.success(x[:, :, -1]).squeeze(-1), batch["success"][:, 1:].float(), reduction="none")
            losses["success"] = (success_error * scored).sum() / count
        return losses

    def forward(self, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        cfg = self.config
        batch = self.normalized(batch)
        latents, state, text = batch["latents"], batch["state"], batch["text_ids"]  # (B, W, C, h, w), (B, W, S)
        now, following = latents[:, :-1], latents[:, 1:]
        imagined, imagined_state, chunk = self._imagine_and_act(now, text, state[:, :-1])
        chunk_mask = batch["action_chunk_mask"][:, :-1].float()  # (B, W-1, H): steps past the episode's end are off
        per_step = (chunk - batch["action_chunk"][:, :-1]).abs().mean(-1)
        action_loss = (per_step * chunk_mask).sum() / chunk_mask.sum().clamp(min=1.0)
        imagined_loss = F.mse_loss(imagined, following)
        state_loss = F.mse_loss(imagined_state, state[:, 1:])

        conditioned = self.conditioned_losses(batch)
        state_loss = state_loss + conditioned["state"]
        align_loss, dynamics_loss = conditioned["align"], conditioned["dynamics"]
        reward_loss, success_loss = conditioned["reward"], conditioned["success"]
        loss = (cfg.action_weight * action_loss + cfg.latent_weight * (imagined_loss + dynamics_loss)
                + cfg.align_weight * align_loss + cfg.state_weight * state_loss
                + cfg.reward_weight * reward_loss + cfg.success_weight * success_loss)
        metrics = {"action_l1": action_loss.detach(), "imagined_mse": imagined_loss.detach(),
                   "dynamics_mse": dynamics_loss.detach(), "align_mse": align_loss.detach(), "state_mse": state_loss.detach(),
                   "reward_mse": reward_loss.detach(), "success_bce": success_loss.detach()}
        if "play" in batch:  # labelled play windows: what actions do, never what the policy should do
            play = self.conditioned_losses(self.normalized(batch["play"]))
            loss = loss + (cfg.latent_weight * play["dynamics"] + cfg.align_weight * play["align"]
                           + cfg.state_weight * play["state"] + cfg.reward_weight * play["reward"]
                           + cfg.success_weight * play["success"])
            metrics.update({f"play_{k}": v.detach() for k, v in play.items()})
        if "video" in batch:  # action-free windows keep the pretraining objective alive
            video_loss, video_metrics = self.world(batch["video"])
            loss = loss + cfg.latent_weight * video_loss
            metrics["video_mse"] = video_metrics["latent_mse"]
        return loss, metrics
