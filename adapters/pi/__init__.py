"""The Pi adapter: drives `pi --mode rpc` children for Patchbay."""
