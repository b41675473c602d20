"""Physical auto-research: studies that propose, run, measure and keep training-recipe changes, unattended."""
