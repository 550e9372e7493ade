"""strongroom.daemon."""
