"""strongroom.chains."""
