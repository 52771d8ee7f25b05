"""Transactions: the simulator, the data contract and dataset storage (pandas/numpy only)."""
