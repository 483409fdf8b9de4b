"""The validated profile resolved once into every decision the stacks, ops and CLI read."""
