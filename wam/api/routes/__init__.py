"""HTTP routes, thin: check the key, validate, call the fleet, the task runner or the store."""
