"""Phone-scan formats: a synthetic scan whose depth is exact survives a trip through each file format, the
file conventions (column-major K, ARKit axes, quaternion order) are the documented ones, and bad files fail in
words that name the file, frame or key."""

from __future__ import annotations

import json
import re
import shutil
import zipfile

import numpy as np
import pytest
import trimesh

from wam.real2sim.formats import (
    ScanWarning, import_scan, read_mesh, read_polycam, read_r3d, write_polycam, write_r3d)
from wam.real2sim.formats_common import matrix_to_quaternion, quaternion_to_matrix
from wam.real2sim.scan import Y_UP_TO_Z_UP, Scan, ScanError, pinhole

FRAMES, RGB_SIZE, DEPTH_SIZE = 6, (48, 64), (24, 32)  # (height, width)
K = pinhole(50.0, 52.0, 31.0, 25.0)


def look_at(eye: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Camera-to-world, OpenCV axes (x right, y down, z forward), in a z-up world."""
    forward = (target - eye) / np.linalg.norm(target - eye)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    pose = np.eye(4)
    pose[:3, :3] = np.stack([right, np.cross(forward, right), forward], axis=1)
    pose[:3, 3] = eye
    return pose


def plane_depth(pose: np.ndarray) -> np.ndarray:
    """Exact depth of the floor z = 0 at each depth pixel's centre, NaN where the ray misses it."""
    h, w = DEPTH_SIZE
    K_depth = np.diag([w / RGB_SIZE[1], h / RGB_SIZE[0], 1.0]) @ K
    v, u = np.mgrid[0:h, 0:w]
    rays = np.stack([(u + 0.5 - K_depth[0, 2]) / K_depth[0, 0], (v + 0.5 - K_depth[1, 2]) / K_depth[1, 1],
                     np.ones((h, w))], axis=-1)
    down = (rays @ pose[:3, :3].T)[..., 2]  # world z change per metre of depth
    depth = -pose[2, 3] / down
    return np.where(depth > 0, depth, np.nan).astype(np.float32)


def synthetic_scan() -> Scan:
    rng = np.random.default_rng(0)
    angles = np.linspace(0, 1.5 * np.pi, FRAMES)
    poses = np.stack([look_at(np.array([1.5 * np.cos(a), 1.5 * np.sin(a), 1.0]), np.zeros(3)) for a in angles])
    depth = np.stack([plane_depth(pose) for pose in poses])
    depth[1, :2, :3] = np.nan  # a few pixels without a reading
    confidence = rng.integers(0, 3, depth.shape).astype(np.uint8)
    confidence[~np.isfinite(depth)] = 0
    # colour in 8x8 blocks: JPEG codes each block on its own, so blocky noise survives it almost exactly
    blocks = rng.integers(0, 256, (FRAMES, RGB_SIZE[0] // 8, RGB_SIZE[1] // 8, 3)).astype(np.uint8)
    rgb = blocks.repeat(8, axis=1).repeat(8, axis=2)
    return Scan(rgb, depth, confidence, np.repeat(K[None], FRAMES, 0), poses, 10.0 + 0.1 * np.arange(FRAMES))


@pytest.fixture
def scan() -> Scan:
    return synthetic_scan()


def assert_same_scan(read: Scan, written: Scan, depth_atol: float) -> None:
    np.testing.assert_allclose(read.poses, written.poses, atol=1e-5)
    np.testing.assert_allclose(read.intrinsics, written.intrinsics, atol=1e-6)
    np.testing.assert_array_equal(np.isnan(read.depth), np.isnan(written.depth))
    np.testing.assert_allclose(read.depth, written.depth, atol=depth_atol, equal_nan=True)
    np.testing.assert_array_equal(read.confidence, written.confidence)
    np.testing.assert_allclose(read.timestamps, written.timestamps, atol=1e-9)
    assert read.rgb.dtype == np.uint8 and read.rgb.shape == written.rgb.shape
    assert np.abs(read.rgb.astype(int) - written.rgb).mean() < 8


def rewrite_r3d(path, drop=(), metadata_edit=None) -> None:
    """Rewrite an .r3d in place without the members in `drop`, its metadata passed through `metadata_edit`."""
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist() if name not in drop}
    if metadata_edit is not None:
        metadata = json.loads(members["metadata"])
        metadata_edit(metadata)
        members["metadata"] = json.dumps(metadata).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def test_the_synthetic_scan_sees_one_point_at_its_image_centres(scan):
    centres = [scan.world_points(i, min_confidence=0).mean(0) for i in range(FRAMES)]
    assert np.all(np.abs(np.array(centres)[:, 2]) < 1e-5)  # every pixel's point lies on the floor


def test_r3d_round_trip(scan, tmp_path):
    path = write_r3d(scan, tmp_path / "scan.r3d")
    read = read_r3d(path)
    assert_same_scan(read, scan, depth_atol=1e-6)
    assert read.source["format"] == "record3d" and read.source["path"] == str(path)


def test_r3d_metadata_is_record3ds_layout(scan, tmp_path):
    path = write_r3d(scan, tmp_path / "scan.r3d", fps=60)
    with zipfile.ZipFile(path) as archive:
        metadata = json.loads(archive.read("metadata"))
        names = set(archive.namelist())
    assert (metadata["w"], metadata["h"], metadata["dw"], metadata["dh"], metadata["fps"]) == (64, 48, 32, 24, 60)
    assert metadata["K"] == [50.0, 0.0, 0.0, 0.0, 52.0, 0.0, 31.0, 25.0, 1.0]  # column-major: cx, cy at 6, 7
    assert len(metadata["poses"]) == FRAMES and all(len(p) == 7 for p in metadata["poses"])
    assert {"rgbd/0.jpg", "rgbd/0.depth", "rgbd/0.conf"} <= names


def test_r3d_poses_are_arkit_quaternions_xyzw(tmp_path, scan):
    """A hand-made file: identity rotation looks down ARKit's -z (wam's +y); 90 degrees about ARKit's y looks
    down -x. Neither is the writer's output, so this pins the convention, not just self-consistency."""
    path = write_r3d(scan, tmp_path / "scan.r3d")
    s = np.sqrt(0.5)
    hand_poses = [[0, 0, 0, 1, 0, 1.5, 0], [0, s, 0, s, 2, 1.5, 0]]
    rewrite_r3d(path, metadata_edit=lambda m: m.update(poses=hand_poses, frameTimestamps=[0.0, 1.0]))
    read = read_r3d(path)
    assert read.frames == 2
    np.testing.assert_allclose(read.poses[0, :3, 3], [0, 0, 1.5], atol=1e-12)  # ARKit y up is wam's z
    np.testing.assert_allclose(read.poses[0, :3, 2], [0, 1, 0], atol=1e-12)  # looking along wam's +y
    np.testing.assert_allclose(read.poses[0, :3, 1], [0, 0, -1], atol=1e-12)  # image down is world down
    np.testing.assert_allclose(read.poses[1, :3, 2], [-1, 0, 0], atol=1e-12)
    np.testing.assert_allclose(read.poses[1, :3, 3], [2, 0, 1.5], atol=1e-12)


def test_quaternions_round_trip_including_half_turns():
    rng = np.random.default_rng(1)
    quaternions = list(rng.normal(size=(50, 4))) + [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0.6, 0.8, 0, 1e-9]]
    for q in quaternions:
        R = quaternion_to_matrix(q, "test")
        np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-12)
        np.testing.assert_allclose(quaternion_to_matrix(matrix_to_quaternion(R), "test"), R, atol=1e-12)


def test_polycam_round_trip(scan, tmp_path):
    folder = write_polycam(scan, tmp_path / "polycam")
    read = read_polycam(folder)
    assert_same_scan(read, scan, depth_atol=0.0005 + 1e-6)  # millimetres, rounded
    assert read.source["format"] == "polycam" and read.source["timestamps"] == "seconds"


def test_polycam_prefers_corrected_cameras_and_reads_microseconds(scan, tmp_path):
    folder = write_polycam(scan, tmp_path / "polycam")
    cameras, corrected = folder / "keyframes" / "cameras", folder / "keyframes" / "corrected_cameras"
    shutil.copytree(cameras, corrected)
    for path in corrected.glob("*.json"):
        camera = json.loads(path.read_text())
        camera["t_23"] += 0.25  # the corrected pose is shifted along ARKit's z (wam's -y)
        camera["timestamp"] = int(camera["timestamp"] * 1e6)
        path.write_text(json.dumps(camera))
    read = read_polycam(folder)
    np.testing.assert_allclose(read.poses[:, 1, 3], scan.poses[:, 1, 3] - 0.25, atol=1e-9)
    np.testing.assert_allclose(read.timestamps, scan.timestamps, atol=1e-6)
    assert read.source["corrected_cameras"] == FRAMES and read.source["timestamps"] == "microseconds"


def test_polycam_without_confidence_trusts_every_reading(scan, tmp_path):
    folder = write_polycam(scan, tmp_path / "polycam")
    shutil.rmtree(folder / "keyframes" / "confidence")  # optional in Polycam's exports
    read = read_polycam(folder)
    np.testing.assert_array_equal(read.confidence, np.where(np.isfinite(scan.depth), 2, 0))


def test_polycam_frames_sort_numerically(scan, tmp_path):
    many = Scan(*(np.concatenate([a, a]) for a in (scan.rgb, scan.depth, scan.confidence, scan.intrinsics,
                                                     scan.poses)), np.arange(2 * FRAMES) * 0.1)
    read = read_polycam(write_polycam(many, tmp_path / "polycam"))  # ids 0..11: "10" sorts after "9"
    np.testing.assert_allclose(read.timestamps, many.timestamps)


@pytest.mark.parametrize("fmt", ["r3d", "polycam"])
def test_world_to_camera_poses_are_caught_unless_declared(scan, tmp_path, fmt):
    write, read = (write_r3d, read_r3d) if fmt == "r3d" else (write_polycam, read_polycam)
    path = write(scan, tmp_path / f"scan.{fmt}", poses="world-to-camera")
    with pytest.raises(ScanError, match="world-to-camera"):
        read(path)
    np.testing.assert_allclose(read(path, poses="world-to-camera").poses, scan.poses, atol=1e-5)


def test_r3d_missing_depth_warns_naming_the_frame(scan, tmp_path):
    path = write_r3d(scan, tmp_path / "scan.r3d")
    rewrite_r3d(path, drop={"rgbd/2.depth"})
    with pytest.warns(ScanWarning, match=re.escape("frame 2 (rgbd/2.depth)")):
        read = read_r3d(path)
    assert np.isnan(read.depth[2]).all() and (read.confidence[2] == 0).all()
    others = [0, 1, 3, 4, 5]
    np.testing.assert_allclose(read.depth[others], scan.depth[others], atol=1e-6)
    assert read.source["frames_without_depth"] == ["frame 2 (rgbd/2.depth)"]


def test_polycam_missing_depth_warns_and_all_missing_raises(scan, tmp_path):
    folder = write_polycam(scan, tmp_path / "polycam")
    (folder / "keyframes" / "depth" / "3.png").unlink()
    with pytest.warns(ScanWarning, match=re.escape("frame 3 (keyframes/depth/3.png)")):
        read = read_polycam(folder)
    assert np.isnan(read.depth[3]).all() and np.isfinite(read.depth[2]).any()
    shutil.rmtree(folder / "keyframes" / "depth")
    with pytest.raises(ScanError, match="no frame has depth"):
        read_polycam(folder)


def test_r3d_metadata_size_that_is_not_the_jpegs_raises_naming_the_file(scan, tmp_path):
    path = write_r3d(scan, tmp_path / "scan.r3d")
    rewrite_r3d(path, metadata_edit=lambda m: m.update(w=48, h=64))
    with pytest.raises(ScanError, match=re.escape(str(path)) + r".*rgbd/0\.jpg.*w=48, h=64"):
        read_r3d(path)


def test_principal_point_outside_the_image_raises(scan, tmp_path):
    path = write_r3d(scan, tmp_path / "scan.r3d")
    rewrite_r3d(path, metadata_edit=lambda m: m["K"].__setitem__(6, 200.0))
    with pytest.raises(ScanError, match=re.escape(str(path)) + ".*frame 0.*principal point"):
        read_r3d(path)


def test_polycam_camera_size_mismatch_names_the_json(scan, tmp_path):
    folder = write_polycam(scan, tmp_path / "polycam")
    camera_path = folder / "keyframes" / "cameras" / "4.json"
    camera = json.loads(camera_path.read_text())
    camera_path.write_text(json.dumps({**camera, "width": 1920}))
    with pytest.raises(ScanError, match=re.escape(str(camera_path))):
        read_polycam(folder)
    del camera["fy"]
    camera_path.write_text(json.dumps(camera))
    with pytest.raises(ScanError, match=re.escape(str(camera_path)) + ".*'fy'"):
        read_polycam(folder)


def test_broken_r3d_archives_raise_naming_file_and_key(scan, tmp_path):
    not_zip = tmp_path / "junk.r3d"
    not_zip.write_bytes(b"not a zip at all")
    with pytest.raises(ScanError, match=re.escape(str(not_zip))):
        read_r3d(not_zip)
    path = write_r3d(scan, tmp_path / "scan.r3d")
    rewrite_r3d(path, metadata_edit=lambda m: m.pop("K"))
    with pytest.raises(ScanError, match=re.escape(str(path)) + ".*'K'"):
        read_r3d(path)
    rewrite_r3d(path, drop={"metadata"})
    with pytest.raises(ScanError, match=re.escape(str(path)) + ".*'metadata'"):
        read_r3d(path)


def test_r3d_damaged_depth_raises_naming_the_member(scan, tmp_path):
    path = write_r3d(scan, tmp_path / "scan.r3d")
    with zipfile.ZipFile(path, "a") as archive:  # a second, garbage member of the same name wins on read
        with pytest.warns(UserWarning, match="Duplicate name"):
            archive.writestr("rgbd/1.depth", b"garbage")
    with pytest.raises(ScanError, match=re.escape("rgbd/1.depth")):
        read_r3d(path)


def box_on_the_floor() -> trimesh.Trimesh:
    """A z-up box 0.2 x 0.3 x 0.1 standing on z = 0."""
    box = trimesh.creation.box(extents=(0.2, 0.3, 0.1))
    box.apply_translation([0, 0, 0.05])
    return box


def test_obj_mesh_is_z_up(tmp_path):
    path = tmp_path / "box.obj"
    box_on_the_floor().export(path)
    read = read_mesh(path)
    assert read.is_mesh and read.source["up"] == "z" and len(read.faces) == 12
    np.testing.assert_allclose(read.vertices.min(0), [-0.1, -0.15, 0], atol=1e-6)
    np.testing.assert_allclose(read.vertices.max(0), [0.1, 0.15, 0.1], atol=1e-6)


def test_glb_scene_is_y_up_with_node_transforms_applied(tmp_path):
    box = box_on_the_floor()
    box.apply_transform(np.linalg.inv(Y_UP_TO_Z_UP))  # as a glTF exporter writes it: y up
    scene = trimesh.Scene()
    scene.add_geometry(box, transform=trimesh.transformations.translation_matrix([1.0, 0, 0]))  # a node transform
    path = tmp_path / "box.glb"
    scene.export(path)
    read = import_scan(path)
    assert read.source == {"path": str(path), "format": "mesh", "up": "y", "file_type": "glb", "watertight": True}
    np.testing.assert_allclose(read.vertices.min(0), [0.9, -0.15, 0], atol=1e-6)  # top up, floor at z = 0
    np.testing.assert_allclose(read.vertices.max(0), [1.1, 0.15, 0.1], atol=1e-6)
    np.testing.assert_allclose(import_scan(path, up="z").vertices.max(0), [1.1, 0.1, 0.15], atol=1e-6)


def test_empty_and_open_meshes(tmp_path):
    empty = tmp_path / "empty.obj"
    empty.write_text("v 0 0 0\nv 1 0 0\n")
    with pytest.raises(ScanError, match=re.escape(str(empty)) + ".*no faces"):
        read_mesh(empty)
    sheet = tmp_path / "sheet.ply"
    trimesh.Trimesh([[0, 0, 0], [1, 0, 0], [0, 1, 0]], [[0, 1, 2]]).export(sheet)
    with pytest.warns(ScanWarning, match=re.escape(str(sheet)) + ".*not watertight"):
        assert len(read_mesh(sheet).faces) == 1


def test_import_scan_dispatches_on_the_path(scan, tmp_path):
    r3d = write_r3d(scan, tmp_path / "scan.r3d")
    polycam = write_polycam(scan, tmp_path / "polycam")
    assert import_scan(r3d).source["format"] == "record3d"
    assert import_scan(polycam).source["format"] == "polycam"
    assert import_scan(polycam / "keyframes").source["path"] == str(polycam)


@pytest.mark.parametrize("name", ["notes.txt", "folder", "missing.r3d"])
def test_import_scan_refuses_what_it_cannot_read(tmp_path, name):
    path = tmp_path / name
    if name == "notes.txt":
        path.write_text("hello")
    elif name == "folder":
        path.mkdir()
    with pytest.raises(ScanError, match=re.escape(str(path)) + ".*Record3D .r3d.*Polycam.*mesh"):
        import_scan(path)


def test_import_scan_refuses_options_that_do_not_apply(scan, tmp_path):
    r3d = write_r3d(scan, tmp_path / "scan.r3d")
    with pytest.raises(ScanError, match="applies to meshes"):
        import_scan(r3d, up="y")
    with pytest.raises(ScanError, match="poses must be one of"):
        import_scan(r3d, poses="sideways")
