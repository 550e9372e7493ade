"""strongroom.chains.ethereum."""
