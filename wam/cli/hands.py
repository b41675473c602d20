"""`wam retarget`: human hand video onto a robot hand (wam.envs.hands), registered on the main app by `wam.cli.app`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from wam.cli.checks import at_least, dataset_out, file_out
from wam.cli.common import console, fail, write_json


def register(app: typer.Typer) -> None:
    @app.command()
    def retarget(
        data: Path = typer.Option(..., help="a human-video dataset: `wam data import-ego` of EgoDex, DexYCB, ARCTIC or "
                                            "HOT3D, or `wam collect --env hand --embodiment human`"),
        out: Path = typer.Option(..., help="the action-labelled robot-hand dataset to write", callback=dataset_out),
        hand: str = typer.Option("shadow", help="the robot hand whose joint space the actions are in (shadow)"),
        iterations: int = typer.Option(12, help="solver iterations per frame (each starts from the last frame's answer)",
                                       callback=at_least(1)),
        report: Optional[Path] = typer.Option(None, help="write the fingertip errors and timing as JSON here", callback=file_out),
    ) -> None:
        """Retarget the right hand of human video onto a robot hand: its video kept, actions in the robot's joint space
        (relative wrist motion plus joint targets), the fingertip error of each frame kept beside them."""
        import numpy as np
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        from wam.envs.hands.retarget import RetargetConfig
        from wam.envs.hands.retarget_dataset import retarget_dataset
        from wam.errors import WamError

        try:
            with Progress(TextColumn("[bold]retarget"), BarColumn(), MofNCompleteColumn(), TextColumn("episodes"),
                          TimeRemainingColumn()) as bar:
                job = bar.add_task("retarget", total=None)
                result = retarget_dataset(data, out, hand, RetargetConfig(iterations=iterations),
                                          progress=lambda done, total: bar.update(job, completed=done, total=total))
        except (ValueError, WamError) as err:
            fail(str(err))
        errors = np.asarray(result.tip_error_mm)
        for note in result.notes:
            console.print(f"[yellow]note:[/] {note}")
        if result.episodes == 0:
            console.print(f"every episode of {data} is in {out} already: nothing to do")
            return
        summary = {"episodes": result.episodes, "frames": result.frames, "untracked_frames": result.untracked_frames,
                   "tip_error_mm_mean": float(errors.mean()), "tip_error_mm_p95": float(np.percentile(errors, 95)),
                   "ms_per_frame": result.ms_per_frame, "notes": result.notes}
        console.print(f"retargeted {result.episodes} episodes, {result.frames} frames onto {hand}: fingertip error "
                      f"{summary['tip_error_mm_mean']:.1f} mm mean, {summary['tip_error_mm_p95']:.1f} mm p95, "
                      f"{result.ms_per_frame:.1f} ms/frame")
        if report is not None:
            write_json(report, summary)
