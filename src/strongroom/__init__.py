"""Strongroom: self-hosted private-key infrastructure behind a PKCS#11 token."""

__version__ = "0.1.0"
__all__ = ["__version__"]
