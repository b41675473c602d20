"""Real to sim: phone scans into posed RGB-D, fused geometry, MuJoCo tabletop scenes and their digital cousins."""
