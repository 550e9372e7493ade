"""strongroom.crypto."""
