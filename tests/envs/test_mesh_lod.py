"""Guards wam.envs.mesh_lod: fewer triangles to draw, physics bit-identical, frames nearly so,
and `mesh_detail=None` leaving the model as Meta-World built it.
"""

from __future__ import annotations

import numpy as np
import pytest

from wam.envs import make
from wam.envs.experts import ScriptedExpert
from wam.envs.metaworld_env import MetaWorldConfig

import metaworld  # noqa: E402  (after wam.envs, which sets up headless rendering)
import mujoco  # noqa: E402

from wam.envs.mesh_lod import simplify_visual_meshes  # noqa: E402

pytestmark = pytest.mark.slow  # simplifies MetaWorld's meshes and renders at full and reduced detail

TASK = "pick-place-v3"  # the gripper touches the puck: contacts with the simplified hand mesh
DEFAULT = MetaWorldConfig(TASK).mesh_detail
ARM_MESHES = ("l0", "l1", "head", "base", "eGripperBase")
# The only arrays the simplification may write.
FACE_ARRAYS = {"mesh_face", "mesh_facenormal", "mesh_facetexcoord", "mesh_facenum"}


def _model_arrays(model: mujoco.MjModel) -> dict[str, np.ndarray]:
    out = {}
    for name in dir(model):
        if name.startswith("_"):
            continue
        value = getattr(model, name)
        if isinstance(value, np.ndarray):
            out[name] = value.copy()
    return out


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


@pytest.fixture(scope="module")
def env_pair():
    full = make(f"metaworld/{TASK}", mesh_detail=None, terminate_on_success=False)
    lod = make(f"metaworld/{TASK}", terminate_on_success=False)
    yield full, lod
    full.close()
    lod.close()


def _mesh_id(model, name: str) -> int:
    mesh_id = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_MESH, name)
    assert mesh_id >= 0, name
    return mesh_id


def test_default_reduces_arm_mesh_faces(env_pair):
    full, lod = env_pair
    assert DEFAULT is not None
    stats = lod.mesh_lod_stats
    assert stats["max_faces"] == DEFAULT
    assert stats["faces_after"] < stats["faces_before"] / 2
    for name in ARM_MESHES:
        before = full._sim.model.mesh_facenum[_mesh_id(full._sim.model, name)]
        after = lod._sim.model.mesh_facenum[_mesh_id(lod._sim.model, name)]
        assert before > DEFAULT and 0 < after <= DEFAULT, (name, before, after)
        assert stats["meshes"][name] == (before, after)


def test_only_triangle_lists_change(env_pair):
    full, lod = env_pair
    a, b = _model_arrays(full._sim.model), _model_arrays(lod._sim.model)
    changed = {name for name in a if not np.array_equal(a[name], b[name])}
    assert changed and changed <= FACE_ARRAYS, changed
    # The new triangles index the mesh's own vertices: within each mesh's vertex range.
    model = lod._sim.model
    for mesh_id in range(model.nmesh):
        adr, num = model.mesh_faceadr[mesh_id], model.mesh_facenum[mesh_id]
        faces = model.mesh_face[adr : adr + num]
        assert faces.min() >= 0 and faces.max() < model.mesh_vertnum[mesh_id]


def test_physics_is_bit_identical():
    # door-close: the expert's hand mesh (a colliding geom, simplified for drawing) hits the door
    # from step ~37 on, so mesh collisions are exercised.
    task, steps = "door-close-v3", 60
    full = make(f"metaworld/{task}", mesh_detail=None, terminate_on_success=False)
    lod = make(f"metaworld/{task}", terminate_on_success=False)
    try:
        model = lod._sim.model
        hand = _mesh_id(model, "eGripperBase")
        assert model.mesh_facenum[hand] < full._sim.model.mesh_facenum[hand]
        hand_geoms = set(np.flatnonzero((model.geom_dataid == hand) & (model.geom_type == mujoco.mjtGeom.mjGEOM_MESH)).tolist())
        expert = ScriptedExpert(task)
        obs_full, _ = full.reset(seed=11)
        obs_lod, _ = lod.reset(seed=11)
        np.testing.assert_array_equal(full._sim.data.qpos, lod._sim.data.qpos)
        hand_contacts = 0
        for _ in range(steps):
            action = expert.act(obs_full)
            obs_full, reward_full, *_ = full.step(action)
            obs_lod, reward_lod, *_ = lod.step(action)
            np.testing.assert_array_equal(full._sim.data.qpos, lod._sim.data.qpos)
            np.testing.assert_array_equal(full._sim.data.qvel, lod._sim.data.qvel)
            np.testing.assert_array_equal(obs_full["sim_state"], obs_lod["sim_state"])
            assert reward_full == reward_lod
            contacts = lod._sim.data.contact
            hand_contacts += sum(int(g1 in hand_geoms or g2 in hand_geoms) for g1, g2 in zip(contacts.geom1, contacts.geom2))
        assert hand_contacts > 0, "the trajectory never touched the simplified hand mesh"
    finally:
        full.close()
        lod.close()


def test_frames_stay_close_to_full_detail(env_pair):
    full, lod = env_pair
    expert = ScriptedExpert(TASK)
    obs_full, _ = full.reset(seed=5)
    obs_lod, _ = lod.reset(seed=5)
    pairs = [(obs_full["image"], obs_lod["image"])]
    for step in range(40):
        action = expert.act(obs_full)
        obs_full, *_ = full.step(action)
        obs_lod, *_ = lod.step(action)
        if step % 8 == 7:
            pairs.append((obs_full["image"], obs_lod["image"]))
    for a, b in pairs:
        assert _psnr(a, b) >= 35.0
    # Simplified, not skipped: the frames are not bit-identical.
    assert any(not np.array_equal(a, b) for a, b in pairs)


def test_none_leaves_the_model_untouched():
    env = make(f"metaworld/{TASK}", obs="state", mesh_detail=None)
    try:
        assert env.mesh_lod_stats is None
        benchmark = metaworld.MT1(TASK, seed=0)
        reference = benchmark.train_classes[TASK]()
        try:
            model, ref = env._sim.model, reference.model
            for name in ("mesh_face", "mesh_facenormal", "mesh_facenum", "mesh_vert", "mesh_normal", "mesh_graph"):
                np.testing.assert_array_equal(getattr(model, name), getattr(ref, name), err_msg=name)
        finally:
            reference.close()
    finally:
        env.close()


def test_function_is_idempotent_and_validates():
    env = make(f"metaworld/{TASK}", obs="state", mesh_detail=None)
    try:
        model = env._sim.model
        with pytest.raises(ValueError):
            simplify_visual_meshes(model, max_faces=3)
        first = simplify_visual_meshes(model, max_faces=1000)
        assert first["faces_after"] < first["faces_before"]
        again = simplify_visual_meshes(model, max_faces=1000)
        assert again["meshes"] == {} and again["faces_after"] == first["faces_after"]
    finally:
        env.close()


def test_visual_only_mode_keeps_colliding_meshes():
    env = make(f"metaworld/{TASK}", obs="state", mesh_detail=None)
    try:
        model = env._sim.model
        hand = _mesh_id(model, "eGripperBase")
        before = int(model.mesh_facenum[hand])
        stats = simplify_visual_meshes(model, max_faces=1000, include_colliding=False)
        assert model.mesh_facenum[hand] == before
        assert stats["skipped"]["eGripperBase"] == "used by a colliding geom"
        assert "l0" in stats["meshes"]
    finally:
        env.close()


def test_models_with_rangefinders_are_left_alone():
    # Rangefinders ray-cast every geom's triangles, visual ones too: simplifying would change them.
    sphere = np.array([[np.cos(a) * np.sin(b), np.sin(a) * np.sin(b), np.cos(b)] for a in np.linspace(0, 6, 12) for b in np.linspace(0.2, 3, 10)])
    xml = f"""<mujoco><asset><mesh name="blob" vertex="{' '.join(map(str, sphere.ravel()))}"/></asset>
      <worldbody><site name="eye" pos="0 0 3"/><geom type="mesh" mesh="blob" contype="0" conaffinity="0"/></worldbody>
      <sensor><rangefinder site="eye"/></sensor></mujoco>"""
    model = mujoco.MjModel.from_xml_string(xml)
    faces = model.mesh_face.copy()
    assert model.mesh_facenum[0] > 16
    with pytest.warns(UserWarning, match="rangefinder"):
        stats = simplify_visual_meshes(model, max_faces=16)
    assert stats["meshes"] == {} and "*" in stats["skipped"]
    np.testing.assert_array_equal(model.mesh_face, faces)
    # Without the sensor the same mesh is simplified.
    plain = mujoco.MjModel.from_xml_string(xml.replace('<sensor><rangefinder site="eye"/></sensor>', ""))
    assert simplify_visual_meshes(plain, max_faces=16)["meshes"]["blob"][1] <= 16
