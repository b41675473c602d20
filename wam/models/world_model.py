"""The world model: a causal transformer that predicts the next latent frame and state.

Read top to bottom: config, attention block, the model. A frame enters as the patches of
its latent grid (8x8x16 latents in 2x2 patches: 16 tokens per camera view, each view's
patches marked by a learned camera embedding) plus one conditioning token
that sums the task text, the proprioceptive state (when the episode has one) and the
action taken at that frame. Attention is frame-causal: a token sees every token of its
own frame and of earlier frames, never later ones, so one pass over T frames trains T
next-frame predictions at once. Patch outputs predict the change of their patch at the
next frame (zero-initialised, so an untrained model copies the last frame); the
conditioning token's output predicts the change of the state.

The action input is either a latent action, inferred from consecutive frames by
`LatentActionEncoder` (action-free video), or a real robot action mapped into the same
space (the WAM adds that encoder).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from wam.models.dims import FROM_DATA, require_from_data
from wam.models.latent_action import LatentActionConfig, LatentActionEncoder
from wam.models.normalizer import Normalizer
from wam.models.text import TextConfig, TextEncoder


@dataclass(frozen=True)
class WorldModelConfig:
    latent_channels: int = 16
    latent_size: int = 8
    patch: int = 2
    d_model: int = 256
    n_layers: int = 6
    n_heads: int = 8
    context: int = 8  # frames the model sees at once
    views: int = 1  # camera slots: latents hold up to this many views side by side
    state_dim: int = FROM_DATA  # the robot state size: set from the data
    action_dim: int = 8  # size of the (latent) action input
    latent_action_hidden: int = 256
    latent_action_noise: float = 0.1
    latent_action_l2: float = 1e-4
    # Share of training windows whose action input is hidden (a learned "unknown action" token): the
    # model then predicts what happens next for the task from frames alone, which is the future a
    # policy steers towards (the WAM reads actions off that prediction by inverse dynamics).
    unconditional_prob: float = 0.25
    state_weight: float = 1.0
    dropout: float = 0.0
    text: TextConfig = field(default_factory=TextConfig)

    @property
    def patches_per_frame(self) -> int:
        return (self.latent_size // self.patch) ** 2

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "WorldModelConfig":
        data = dict(data)
        data["text"] = TextConfig(**data.get("text", {}))
        return cls(**data)


class Block(nn.Module):
    def __init__(self, d: int, heads: int, dropout: float):
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))
        self.dropout = dropout

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        q, k, v = rearrange(self.qkv(self.norm1(x)), "b l (three h e) -> three b h l e", three=3, h=self.heads)
        attended = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0)
        x = x + self.proj(rearrange(attended, "b h l e -> b l (h e)"))
        return x + self.mlp(self.norm2(x))


def frame_causal_mask(frames: int, tokens_per_frame: int, device: torch.device) -> torch.Tensor:
    """(L, L) bool, True where attention is allowed: same or earlier frame."""
    frame_of = torch.arange(frames * tokens_per_frame, device=device) // tokens_per_frame
    return frame_of[:, None] >= frame_of[None, :]


class WorldModel(nn.Module):
    kind = "world_model"

    def __init__(self, config: WorldModelConfig = WorldModelConfig()):
        super().__init__()
        require_from_data("WorldModel", state_dim=config.state_dim)
        if config.latent_size % config.patch:
            raise ValueError(f"latent_size {config.latent_size} is not divisible by patch {config.patch}")
        self.config = config
        d, patch_dim = config.d_model, config.latent_channels * config.patch**2
        n = config.patches_per_frame
        self.patch_in = nn.Linear(patch_dim, d)
        self.position = nn.Parameter(torch.randn(n + 1, d) * 0.02)  # n patches + the conditioning token
        self.time = nn.Parameter(torch.randn(config.context, d) * 0.02)
        # Zero-initialised: one camera's model is unchanged by the slot, and a second slot starts as the first.
        self.camera = nn.Parameter(torch.zeros(config.views, d))
        self.text = TextEncoder(config.text, d)
        self.state_in = nn.Linear(config.state_dim, d)
        self.action_in = nn.Linear(config.action_dim, d)
        self.unknown_action = nn.Parameter(torch.zeros(d))  # stands in for an action nobody knows yet
        self.blocks = nn.ModuleList(Block(d, config.n_heads, config.dropout) for _ in range(config.n_layers))
        self.norm = nn.LayerNorm(d)
        self.next_latent = nn.Linear(d, patch_dim)
        self.next_state = nn.Linear(d, config.state_dim)
        for head in (self.next_latent, self.next_state):
            nn.init.zeros_(head.weight)
            nn.init.zeros_(head.bias)
        self.state_norm = Normalizer(config.state_dim)  # the data's state statistics; internals see normalised states
        self.latent_actions = LatentActionEncoder(
            LatentActionConfig(config.latent_channels, config.latent_size, config.action_dim, config.latent_action_hidden,
                               config.latent_action_noise)
        )

    def views_of(self, latents: torch.Tensor) -> int:
        """Camera views side by side in (..., C, h, V*w) latents; more than the model's slots is an error."""
        h, width = latents.shape[-2:]
        if h != self.config.latent_size or width % h:
            raise ValueError(f"latents are {h}x{width}, the model takes {self.config.latent_size}-high square views side by side")
        views = width // h
        if views > self.config.views:
            raise ValueError(f"{views} camera views, the model has {self.config.views} camera slots")
        return views

    # -- the dynamics --------------------------------------------------------------------------
    def features(
        self,
        latents: torch.Tensor,  # (B, T, C, h, w)
        actions: torch.Tensor | None,  # (B, T, A): the action taken at each frame; None: all unknown
        text_ids: torch.Tensor,  # (B, L)
        state: torch.Tensor | None = None,  # (B, T, S)
        state_mask: torch.Tensor | None = None,  # (B, T) bool: which frames have a state
        action_known: torch.Tensor | None = None,  # (B, T) bool: False hides that frame's action
        frame_bias: torch.Tensor | None = None,  # (B, T, d): added to every token of its frame
    ) -> torch.Tensor:
        """The transformer's output tokens, (B, T, V*n + 1, d): V*n patch tokens, then the conditioning token."""
        cfg = self.config
        b, t = latents.shape[:2]
        if t > cfg.context:
            raise ValueError(f"{t} frames exceed the model's context of {cfg.context}")
        views = self.views_of(latents)
        patches = rearrange(latents, "b t c (y p) (v x q) -> b t (v y x) (c p q)", p=cfg.patch, q=cfg.patch, v=views)
        if actions is None:
            action_tokens = self.unknown_action.expand(b, t, -1)
        else:
            action_tokens = self.action_in(actions)
            if action_known is not None:
                action_tokens = torch.where(action_known[..., None], action_tokens, self.unknown_action)
        condition = self.text(text_ids)[:, None, :] + action_tokens  # (B, T, d)
        if state is not None:
            gate = torch.ones(b, t, 1, device=latents.device) if state_mask is None else state_mask[..., None].float()
            condition = condition + self.state_in(state) * gate
        n = cfg.patches_per_frame
        position = torch.cat([(self.position[:n][None] + self.camera[:views, None]).flatten(0, 1), self.position[n:]])
        tokens = torch.cat([self.patch_in(patches), condition[:, :, None, :]], dim=2)  # (B, T, V*n+1, d)
        tokens = tokens + position + self.time[:t, None, :]
        if frame_bias is not None:
            tokens = tokens + frame_bias[:, :, None, :]
        x = rearrange(tokens, "b t n d -> b (t n) d")
        mask = frame_causal_mask(t, views * n + 1, x.device)
        for block in self.blocks:
            x = block(x, mask)
        return rearrange(self.norm(x), "b (t n) d -> b t n d", t=t)

    def heads(self, x: torch.Tensor, latents: torch.Tensor, state: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Output tokens -> next latent frame and next state, as changes of the current ones."""
        cfg = self.config
        delta = rearrange(
            self.next_latent(x[:, :, :-1]), "b t (v y x) (c p q) -> b t c (y p) (v x q)",
            v=self.views_of(latents), y=cfg.latent_size // cfg.patch, p=cfg.patch, q=cfg.patch,
        )
        next_state = self.next_state(x[:, :, -1])
        if state is not None:
            next_state = next_state + state
        return (latents + delta).clamp(-1.0, 1.0), next_state

    def predict(
        self,
        latents: torch.Tensor,  # (B, T, C, h, w)
        actions: torch.Tensor | None,  # (B, T, A); None: every action unknown
        text_ids: torch.Tensor,  # (B, L)
        state: torch.Tensor | None = None,  # (B, T, S)
        state_mask: torch.Tensor | None = None,  # (B, T) bool
        action_known: torch.Tensor | None = None,  # (B, T) bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Next latent frame and next state after each of the T frames: (B, T, C, h, w), (B, T, S)."""
        x = self.features(latents, actions, text_ids, state, state_mask, action_known)
        return self.heads(x, latents, state)

    # -- pretraining on video -----------------------------------------------------------------
    def forward(self, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        """Next-frame loss on windows of latents, conditioned on latent actions inferred from them."""
        latents = batch["latents"]  # (B, W, C, h, w)
        actions, penalty = self.latent_actions.infer(latents, sample=self.training)  # (B, W-1, A)
        state, state_mask = batch.get("state"), batch.get("state_mask")
        state = None if state is None else self.state_norm.normalize(state)
        known = None
        if self.training and self.config.unconditional_prob > 0:
            hidden = torch.rand(latents.shape[0], 1, device=latents.device) < self.config.unconditional_prob
            known = (~hidden).expand(-1, actions.shape[1])  # (B, W-1): a window is hidden whole
        predicted, predicted_state = self.predict(
            latents[:, :-1], actions, batch["text_ids"],
            None if state is None else state[:, :-1], None if state_mask is None else state_mask[:, :-1], known,
        )
        latent_loss = F.mse_loss(predicted, latents[:, 1:])
        loss = latent_loss + self.config.latent_action_l2 * penalty
        # Spread of latent actions across the batch: near 0 means they carry nothing (collapse).
        metrics = {"latent_mse": latent_loss.item(), "action_std": actions.detach().flatten(0, 1).std(0).mean().item()}
        if state is not None:
            valid = (state_mask[:, 1:] & state_mask[:, :-1]).float() if state_mask is not None else torch.ones_like(state[:, 1:, 0])
            per_frame = (predicted_state - state[:, 1:]).pow(2).mean(-1)
            state_loss = (per_frame * valid).sum() / valid.sum().clamp(min=1.0)
            loss = loss + self.config.state_weight * state_loss
            metrics["state_mse"] = state_loss.item()
        return loss, metrics

    @torch.no_grad()
    def rollout(
        self,
        context: torch.Tensor,  # (B, k, C, h, w) real latent frames
        actions: torch.Tensor | None,  # (B, k - 1 + H, A): actions at every context frame and each dreamed step
        text_ids: torch.Tensor,
        context_state: torch.Tensor | None = None,  # (B, k, S)
        horizon: int | None = None,  # with actions=None (every action hidden): how many frames to dream
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Dream H frames autoregressively, the model's window sliding over the last `context` frames.

        States go in and come out in the data's units."""
        frames, states = context, None if context_state is None else self.state_norm.normalize(context_state)
        k = context.shape[1]
        if actions is None and horizon is None:
            raise ValueError("rollout with hidden actions needs a horizon")
        horizon = actions.shape[1] - (k - 1) if actions is not None else horizon
        for step in range(horizon):
            window = slice(max(0, frames.shape[1] - self.config.context), frames.shape[1])
            action_window = None if actions is None else actions[:, window.start : frames.shape[1]]
            state_window = None if states is None else states[:, window]
            next_latents, next_state = self.predict(frames[:, window], action_window, text_ids, state_window)
            frames = torch.cat([frames, next_latents[:, -1:]], dim=1)
            if states is not None:
                states = torch.cat([states, next_state[:, -1:]], dim=1)
        dreamed_states = None if states is None else self.state_norm.denormalize(states[:, k:])
        return frames[:, k:], dreamed_states
