"""A synthetic phone scan of a tabletop scene, with the ground truth a real scan never has.

The "phone" walks an arc around the table at chest height, looking at the table's centre with a little
hand wobble, and records what an iPhone's LiDAR app records: an RGB frame, a coarse depth map (noise that
grows with distance, dropped readings, unreliable edges marked low-confidence) and a camera pose with
tracking jitter. The scan comes out as a `Scan` in wam's conventions, which the format writers then put
into a Record3D or Polycam file, so every stage from import to scene is tested against exact geometry.
It is also the benchmark's "real world": the scene scanned is the one policies are finally judged in.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wam.envs.rendering import configure_headless_rendering, disable_costly_effects

configure_headless_rendering()

import mujoco  # noqa: E402

from wam.envs.tabletop.scene import TabletopScene, load_scene, objects_xml, room_xml  # noqa: E402
from wam.real2sim.scan import Scan, pinhole  # noqa: E402


@dataclass(frozen=True)
class ScannerConfig:
    frames: int = 24
    rgb_size: tuple[int, int] = (240, 320)  # (height, width), 4:3 like a phone held sideways
    depth_size: tuple[int, int] = (192, 256)  # ARKit's LiDAR depth map
    fovy: float = 55.0  # vertical field of view (degrees)
    radius: float = 0.55  # horizontal distance of the arc from the table's centre (m)
    height: float = 0.4  # above the table top (m)
    sweep: float = 200.0  # degrees of arc walked, centred on the side the robot faces from
    depth_noise: float = 0.005  # depth noise std per metre of depth
    dropout: float = 0.02  # fraction of depth readings lost at random
    pose_noise_m: float = 0.002  # tracking jitter of the recorded poses
    pose_noise_deg: float = 0.2
    settle_seconds: float = 1.0  # physics run before scanning, so the scan sees objects at rest
    seed: int = 0


@dataclass
class GroundTruth:
    """Where everything really was while scanning."""

    scene: TabletopScene
    directory: Path
    positions: dict[str, np.ndarray]  # object frame origin (world)
    rotations: dict[str, np.ndarray]  # (3, 3)
    true_poses: np.ndarray  # (N, 4, 4) the camera's real poses (the scan holds the jittered ones)


def scan_xml(scene: TabletopScene, directory: Path) -> str:
    assets, bodies = objects_xml(scene, directory)
    return (f'<mujoco model="scan-{scene.name}"><compiler angle="radian"/>'
            '<option timestep="0.002"/><visual><global offwidth="640" offheight="640"/>'
            '<map znear="0.01" zfar="10"/></visual>'
            f'<asset>{assets}</asset><worldbody>'
            f'{room_xml(scene)}<camera name="phone" pos="0 0 1"/>{bodies}</worldbody></mujoco>')


def _rotation_matrix(axis: np.ndarray, angle: float) -> np.ndarray:
    quat = np.zeros(4)
    mujoco.mju_axisAngle2Quat(quat, axis / max(np.linalg.norm(axis), 1e-12), angle)
    matrix = np.zeros(9)
    mujoco.mju_quat2Mat(matrix, quat)
    return matrix.reshape(3, 3)


def phone_poses(scene: TabletopScene, config: ScannerConfig, rng: np.random.Generator) -> np.ndarray:
    """(N, 4, 4) camera-to-world, OpenCV axes: an arc around the table looking at its centre, with wobble."""
    centre = np.array([*scene.table.center, scene.table.top])
    start = -np.pi / 2 - np.radians(config.sweep) / 2  # the arc is centred on -y, the robot's side
    poses = []
    for i in range(config.frames):
        angle = start + np.radians(config.sweep) * i / max(config.frames - 1, 1)
        eye = centre + np.array([config.radius * np.cos(angle), config.radius * np.sin(angle), config.height])
        eye = eye + rng.normal(0, 0.01, 3)
        target = centre + np.array([*rng.normal(0, 0.02, 2), 0.0])
        forward = (target - eye) / np.linalg.norm(target - eye)
        right = np.cross(forward, [0.0, 0.0, 1.0])
        right /= np.linalg.norm(right)
        down = np.cross(forward, right)
        pose = np.eye(4)
        pose[:3, :3] = np.stack([right, down, forward], axis=1)
        pose[:3, 3] = eye
        poses.append(pose)
    return np.array(poses)


def _jitter(pose: np.ndarray, config: ScannerConfig, rng: np.random.Generator) -> np.ndarray:
    noisy = pose.copy()
    noisy[:3, :3] = _rotation_matrix(rng.normal(size=3), np.radians(rng.normal(0, config.pose_noise_deg))) @ pose[:3, :3]
    noisy[:3, 3] += rng.normal(0, config.pose_noise_m, 3)
    return noisy


def _place_camera(model, data, pose: np.ndarray) -> None:
    """Put the MuJoCo camera at an OpenCV camera-to-world pose (MuJoCo cameras look down -z with y up)."""
    rotation = pose[:3, :3] @ np.diag([1.0, -1.0, -1.0])
    quat = np.zeros(4)
    mujoco.mju_mat2Quat(quat, rotation.reshape(-1))
    camera = model.camera("phone").id
    model.cam_pos[camera], model.cam_quat[camera] = pose[:3, 3], quat
    mujoco.mj_kinematics(model, data)
    mujoco.mj_camlight(model, data)


def _sensor_depth(depth: np.ndarray, config: ScannerConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Noise that grows with distance, readings dropped at random and past the sensor's range, edges doubted."""
    noisy = depth + rng.normal(0, 1, depth.shape) * config.depth_noise * depth
    confidence = np.full(depth.shape, 2, np.uint8)
    gy, gx = np.gradient(depth)
    edges = np.hypot(gx, gy) > 0.02 * depth
    confidence[edges] = 1
    lost = (rng.random(depth.shape) < config.dropout) | (depth > 5.0) | (depth <= 0)
    noisy[lost], confidence[lost] = np.nan, 0
    return noisy.astype(np.float32), confidence


def scan_scene(directory: str | Path, config: ScannerConfig = ScannerConfig()) -> tuple[Scan, GroundTruth]:
    """Scan the scene directory's table and objects as a phone would; the scan and what was really there."""
    directory = Path(directory)
    scene = load_scene(directory)
    rng = np.random.default_rng(config.seed)
    model = mujoco.MjModel.from_xml_string(scan_xml(scene, directory))
    model.cam_fovy[model.camera("phone").id] = config.fovy
    disable_costly_effects(model)
    data = mujoco.MjData(model)
    mujoco.mj_step(model, data, nstep=int(config.settle_seconds / model.opt.timestep))
    positions = {o.name: data.body(o.name).xpos.copy() for o in scene.objects}
    rotations = {o.name: data.body(o.name).xmat.reshape(3, 3).copy() for o in scene.objects}
    true_poses = phone_poses(scene, config, rng)
    (H, W), (h, w) = config.rgb_size, config.depth_size
    rgb_renderer, depth_renderer = mujoco.Renderer(model, H, W), mujoco.Renderer(model, h, w)
    depth_renderer.enable_depth_rendering()
    rgbs, depths, confidences, recorded = [], [], [], []
    try:
        for pose in true_poses:
            _place_camera(model, data, pose)
            rgb_renderer.update_scene(data, camera="phone")
            rgbs.append(rgb_renderer.render().copy())
            depth_renderer.update_scene(data, camera="phone")
            depth, confidence = _sensor_depth(depth_renderer.render().copy(), config, rng)
            depths.append(depth)
            confidences.append(confidence)
            recorded.append(_jitter(pose, config, rng))
    finally:
        rgb_renderer.close()
        depth_renderer.close()
    fy = (H / 2) / np.tan(np.radians(config.fovy) / 2)
    K = pinhole(fy, fy, W / 2, H / 2)
    scan = Scan(np.array(rgbs), np.array(depths), np.array(confidences), np.repeat(K[None], config.frames, 0),
                np.array(recorded), np.arange(config.frames) / 10.0,
                {"path": str(directory), "format": "synthetic", "scanner": config.__dict__})
    return scan, GroundTruth(scene, directory, positions, rotations, true_poses)
