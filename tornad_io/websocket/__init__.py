"""The 2010 import path of the Flash socket policy server: ``tornad_io.websocket.flash``."""

from tornad_io.websocket.flash import FlashPolicyServer, policy_for_origins

__all__ = ["FlashPolicyServer", "policy_for_origins"]
