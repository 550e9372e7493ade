"""strongroom.policy."""
