"""The `wam` command line: a package of thin commands on top of the library, which never imports it.

app (the stage commands and the app itself), dojo (`plan`, `rl`, `distill`, `judge`), api (`serve`, `keys`,
`robots`, `tasks`, `mcp`), checks (every option's check at the boundary), common (what they share). The bridge's
command lives with the bridge (wam.bridge.cli), which runs next to a robot without the training stack.
"""

from wam.cli.app import app

__all__ = ["app"]
