"""The web console: pages for the fleet, its robots and their emergency stops, served by `wam serve` at /."""
