"""SoftHSM2 harness: the embedded default token for `make serve` and throwaway tokens for tests."""

from strongroom.softhsm.harness import SoftHsmToken, create_token, find_module, load_token

__all__ = ["SoftHsmToken", "create_token", "find_module", "load_token"]
