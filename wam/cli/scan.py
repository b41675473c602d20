"""`wam scan ...`: phone scans into simulator scenes and their digital cousins (wam.real2sim)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Optional

import typer

from wam.cli.checks import at_least, directory_out, file_out
from wam.cli.common import console, fail, write_json

scan_app = typer.Typer(help="Real to sim: import phone scans, build tabletop scenes, make digital cousins.",
                       no_args_is_help=True)
POSES_HELP = ("what the file's poses are: camera-to-world (Record3D's and Polycam's own) or world-to-camera (a file "
              "written the other way round; wam refuses such a scan unless told)")


def _errors():
    from wam.envs.tabletop.scene import SceneError
    from wam.errors import WamError
    from wam.real2sim.scan import ScanError

    return (ValueError, WamError, SceneError, ScanError, ImportError, FileNotFoundError)


@scan_app.command("import")
def import_(
    src: Path = typer.Argument(..., help="a Record3D .r3d file, a Polycam raw-data folder (with keyframes/), or a mesh "
                                         "(.glb, .obj, .ply)"),
    out: Path = typer.Option(..., help="the scan directory to write (scan.json + frames.npz or mesh.npz)",
                             callback=directory_out),
    poses: str = typer.Option("camera-to-world", help=POSES_HELP),
    up: Optional[str] = typer.Option(None, help="a mesh's up axis: y (glTF's) or z (default: y for .glb, z otherwise)"),
) -> None:
    """Read a phone scan into one posed RGB-D sequence in wam's conventions (z up, camera-to-world, OpenCV axes)."""
    try:
        from wam.real2sim.formats import import_scan
        from wam.real2sim.scan import save_scan

        if poses not in ("camera-to-world", "world-to-camera"):
            raise ValueError(f"--poses must be camera-to-world or world-to-camera, got {poses!r}")
        if not src.exists():
            raise ValueError(f"{src}: no such file or folder")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            scan = import_scan(src, poses=poses, up=up)
        for warning in caught:
            console.print(f"[yellow]warning:[/yellow] {warning.message}", highlight=False)
        save_scan(scan, out)
    except _errors() as err:
        fail(str(err))
    what = f"{len(scan.faces)} faces" if scan.is_mesh else f"{scan.frames} frames"
    console.print(f"imported {src} ({scan.source.get('format')}): {what} -> {out}")


@scan_app.command()
def synth(
    scene: Path = typer.Argument(..., help="a tabletop scene directory to scan (wam scan arrange, build or cousins)"),
    out: Path = typer.Option(..., help="where to write the scan: a .r3d file, or a folder for Polycam's raw data"),
    frames: int = typer.Option(24, help="frames of the sweep", callback=at_least(3)),
    depth_noise: float = typer.Option(0.005, help="depth noise std per metre of depth"),
    dropout: float = typer.Option(0.02, help="fraction of depth readings lost"),
    seed: int = typer.Option(0, help="the sweep's wobble, the noise and the jitter", callback=at_least(0)),
    truth: Optional[Path] = typer.Option(None, help="write where every object really stood as JSON here", callback=file_out),
) -> None:
    """Scan a simulated scene as a phone would (RGB, LiDAR-like depth, confidence, jittered poses) into a real format."""
    try:
        from wam.real2sim.formats import write_polycam, write_r3d
        from wam.real2sim.scanner import ScannerConfig, scan_scene

        if depth_noise < 0 or not 0 <= dropout < 1:
            raise ValueError(f"--depth-noise must be >= 0 and --dropout in [0, 1), got {depth_noise} and {dropout}")
        if out.exists() and out.is_dir() and any(out.iterdir()) and out.suffix == ".r3d":
            raise ValueError(f"{out} is a directory; a Record3D scan is one .r3d file")
        scan, ground = scan_scene(scene, ScannerConfig(frames=frames, depth_noise=depth_noise, dropout=dropout, seed=seed))
        if out.suffix == ".r3d":
            write_r3d(scan, out)
        else:
            write_polycam(scan, out)
    except _errors() as err:
        fail(str(err))
    if truth is not None:
        write_json(truth, {name: {"position": ground.positions[name].tolist(), "rotation": ground.rotations[name].tolist()}
                           for name in ground.positions})
    console.print(f"scanned {scene}: {scan.frames} frames -> {out}")


@scan_app.command()
def build(
    scan: Path = typer.Argument(..., help="a scan directory (wam scan import)"),
    out: Path = typer.Option(..., help="the scene directory to write", callback=directory_out),
    target: Optional[int] = typer.Option(None, help="the object the tasks act on, by index (default: the one nearest "
                                                    "the table's centre)"),
    voxel: float = typer.Option(0.005, help="fusion grid (m)"),
    decomposition: str = typer.Option("clusters", help="convex pieces for contact: clusters (k-means hulls, tens of ms) "
                                                       "or coacd (CoACD, seconds an object)"),
    report: Optional[Path] = typer.Option(None, help="write what was found, the stability check and timings here",
                                          callback=file_out),
) -> None:
    """Fuse the scan, find the table and the objects on it, and write a MuJoCo tabletop scene (`--env scan/OUT`)."""
    try:
        from wam.real2sim.build import BuildConfig, build_scene
        from wam.real2sim.reconstruct import ReconstructionConfig
        from wam.real2sim.scan import load_scan

        if not 0.001 <= voxel <= 0.05:
            raise ValueError(f"--voxel must be between 0.001 and 0.05 m, got {voxel}")
        if decomposition not in ("clusters", "coacd"):
            raise ValueError(f"--decomposition must be clusters or coacd, got {decomposition!r}")
        result = build_scene(load_scan(scan), out, config=BuildConfig(target=target, decomposition=decomposition),
                             reconstruction=ReconstructionConfig(voxel=voxel))
    except _errors() as err:
        fail(str(err))
    if report is not None:
        write_json(report, result)
    for name, drift in result["unstable"].items():
        console.print(f"[yellow]warning:[/yellow] {name} moves {drift * 1000:.1f} mm when left alone for 2 s")
    console.print(f"built {out}: {result['objects']} objects on a {result['table']['size'][0]:.2f} x "
                  f"{result['table']['size'][1]:.2f} m table in {result['seconds']['total']:.1f} s; tasks act on "
                  f"{result['target']}")


@scan_app.command()
def cousins(
    scene: Path = typer.Argument(..., help="a scene directory (wam scan build)"),
    out: Path = typer.Option(..., help="where the cousin scenes go (cousin0, cousin1, ...)", callback=directory_out),
    k: int = typer.Option(8, help="cousin scenes", callback=at_least(1)),
    matches: int = typer.Option(4, help="nearest library assets each object cycles through", callback=at_least(1)),
    seed: int = typer.Option(0, help="library proportions, sizes, places and colours", callback=at_least(0)),
) -> None:
    """Digital cousins: the scene's layout with each object swapped for near matches from the asset library."""
    try:
        from wam.real2sim.cousins import CousinConfig, make_cousins

        made = make_cousins(scene, out, CousinConfig(k=k, matches=matches, seed=seed))
    except _errors() as err:
        fail(str(err))
    console.print(f"wrote {len(made)} cousins of {scene} under {out}")


@scan_app.command()
def arrange(
    out: Path = typer.Option(..., help="the scene directory to write", callback=directory_out),
    kinds: str = typer.Option("stone,box,cylinder", help="object kinds, the first the tasks' target: library kinds "
                                                         "(box, cylinder, mug, bowl, bottle, can) or held-out ones (stone, "
                                                         "l-block, hexagon)"),
    seed: int = typer.Option(0, help="proportions, places and colours", callback=at_least(0)),
) -> None:
    """A tabletop scene of procedural objects: the benchmark's "real world", or a scene to scan with `wam scan synth`."""
    try:
        from wam.real2sim.arrange import arranged_scene

        scene = arranged_scene(out, tuple(k.strip() for k in kinds.split(",") if k.strip()), seed)
    except _errors() as err:
        fail(str(err))
    console.print(f"arranged {len(scene.objects)} objects in {out}")
