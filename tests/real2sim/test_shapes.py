"""Shapes, meshes and convex pieces: watertight, the right size, and pieces that cover the solid snugly."""

from __future__ import annotations

import numpy as np
import pytest

from wam.real2sim import shapes
from wam.real2sim.library import HELD_OUT_KINDS, LIBRARY_KINDS, asset_mesh, make_asset


@pytest.mark.parametrize("kind", LIBRARY_KINDS + HELD_OUT_KINDS)
def test_every_kind_meshes_watertight_standing_on_its_footprint(kind):
    asset = make_asset(kind, np.random.default_rng(0))
    mesh = asset_mesh(asset, 0.004)
    assert mesh.is_watertight and mesh.volume > 0
    low, high = mesh.bounds
    assert abs(low[2]) < 1e-6 and np.allclose((low[:2] + high[:2]) / 2, 0, atol=1e-6)
    assert abs(high[2] - asset.height) < 0.006


def test_a_box_needs_one_piece_and_a_mug_many_that_hug_it():
    box = asset_mesh(make_asset("box", np.random.default_rng(1)), 0.004)
    mug = asset_mesh(make_asset("mug", np.random.default_rng(1)), 0.004)
    one = shapes.convex_pieces(box)
    assert len(one.hulls) == 1 and one.overfill < 1.05
    many = shapes.convex_pieces(mug)
    assert len(many.hulls) > 4 and many.overfill < 1.2
    assert shapes.convex_pieces(mug, most=1).overfill > 2  # one hull fills the mug's cavity: what the pieces avoid


def test_coacd_decomposes_a_mug_into_convex_pieces():
    mug = asset_mesh(make_asset("mug", np.random.default_rng(1)), 0.008)
    pieces = shapes.convex_pieces(mug, method="coacd", most=12)
    assert 2 <= len(pieces.hulls) <= 12 and all(h.is_convex for h in pieces.hulls)
    assert pieces.overfill < 2
    with pytest.raises(ValueError, match="'clusters' or 'coacd'"):
        shapes.convex_pieces(mug, method="vhacd")


def test_voxels_become_a_closed_mesh_around_them():
    grid = np.zeros((10, 10, 10), bool)
    grid[2:6, 3:7, 0:4] = True
    mesh = shapes.mesh_from_voxels(grid, origin=np.zeros(3), step=0.01)
    assert mesh.is_watertight
    low, high = mesh.bounds
    # the surface runs along the voxels' faces: cells 2..5 centred at 0.02..0.05 span 0.015..0.055
    np.testing.assert_allclose(low, [0.015, 0.025, -0.005], atol=1e-6)
    np.testing.assert_allclose(high, [0.055, 0.065, 0.035], atol=1e-6)
