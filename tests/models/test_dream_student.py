import pytest
import torch

from wam.models.dream_student import DreamStudent, DreamStudentConfig
from wam.models.text import tokenize


def _inputs(config: DreamStudentConfig, b: int = 3, t: int = 2) -> tuple[torch.Tensor, ...]:
    torch.manual_seed(0)
    latents = torch.rand(b, t, *config.latent_shape) * 2 - 1
    actions = torch.rand(b, t, config.stride, config.robot_action_dim) * 2 - 1
    return latents, actions, tokenize(["open the drawer"] * b, config.text), torch.randn(b, t, config.state_dim)


def test_an_untrained_student_copies_the_last_frame_and_state():
    config = DreamStudentConfig(state_dim=4, robot_action_dim=4, hidden=32, layers=1)
    latents, actions, text, state = _inputs(config)
    latent, next_state, reward, success = DreamStudent(config).step(latents, actions, text, state)
    assert latent.shape == (3, 1, 16, 8, 8) and next_state.shape == (3, 1, 4) and reward.shape == success.shape == (3, 1)
    torch.testing.assert_close(latent[:, 0], latents[:, -1])
    torch.testing.assert_close(next_state[:, 0], state[:, -1])


def test_one_frame_of_context_works_and_only_the_last_two_frames_matter():
    config = DreamStudentConfig(state_dim=4, robot_action_dim=4, hidden=32, layers=1)
    student = DreamStudent(config)
    torch.nn.init.normal_(student.next_latent.weight, std=0.01)
    latents, actions, text, state = _inputs(config, t=4)
    full = student.step(latents, actions, text, state)[0]
    changed = latents.clone()
    changed[:, :2] = 0.0  # frames the student does not read
    torch.testing.assert_close(student.step(changed, actions, text, state)[0], full)
    assert student.step(latents[:, :1], actions[:, :1], text, state[:, :1])[0].shape == (3, 1, 16, 8, 8)


def test_the_distillation_loss_trains_every_part():
    config = DreamStudentConfig(state_dim=4, robot_action_dim=4, hidden=32, layers=1)
    student = DreamStudent(config)
    for head in (student.next_latent, student.outcome):  # zero at initialisation, as after no training
        torch.nn.init.normal_(head.weight, std=0.01)
    latents, actions, text, state = _inputs(config)
    batch = {"latents": latents, "action": actions, "text_ids": text, "state": state,
             "teacher_latent": latents[:, -1] * 0.9, "teacher_state": state[:, -1] + 0.1,
             "teacher_reward": torch.rand(3) * 10, "teacher_success": torch.randn(3)}
    loss, metrics = student(batch)
    assert torch.isfinite(loss) and metrics["latent_mse"] > 0 and 0 <= metrics["success_agreement"] <= 1
    loss.backward()
    for name in ("frames_in.weight", "blocks.0.film.weight", "next_latent.weight", "outcome.weight", "action_in.0.weight",
                 "text.embedding.weight"):
        grad = dict(student.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name


def test_config_round_trips_through_a_dict():
    config = DreamStudentConfig(state_dim=4, robot_action_dim=4, hidden=48, layers=2)
    assert DreamStudentConfig.from_dict(config.to_dict()) == config


def test_a_student_of_two_camera_views_steps_and_learns_on_side_by_side_latents():
    config = DreamStudentConfig(state_dim=4, robot_action_dim=4, latent_channels=4, latent_size=4, hidden=32, layers=1, condition=16, views=2)
    student = DreamStudent(config)
    torch.nn.init.normal_(student.next_latent.weight, std=0.01)
    latents, actions, text, state = _inputs(config)
    assert latents.shape == (3, 2, 4, 4, 8)
    latent, next_state, reward, success = student.step(latents, actions, text, state)
    assert latent.shape == (3, 1, 4, 4, 8) and next_state.shape == (3, 1, 4) and reward.shape == success.shape == (3, 1)
    batch = {"latents": latents, "action": actions, "text_ids": text, "state": state, "teacher_latent": latents[:, -1] * 0.9,
             "teacher_state": state[:, -1], "teacher_reward": torch.rand(3), "teacher_success": torch.randn(3)}
    loss, _ = student(batch)
    loss.backward()
    assert torch.isfinite(loss) and student.frames_in.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match=r"2 camera view\(s\)"):
        student.step(latents[..., :4], actions, text, state)  # one view where the student reads two


def test_a_student_saved_before_views_loads_with_one_view():
    saved = DreamStudentConfig(state_dim=4, robot_action_dim=4, hidden=48).to_dict()
    del saved["views"]
    assert DreamStudentConfig.from_dict(saved).views == 1
