"""Activity families: one module per family of Turnkey activity types."""
