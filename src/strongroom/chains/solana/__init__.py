"""strongroom.chains.solana: the wire format (`wire`) and what policies see (`policy`)."""
