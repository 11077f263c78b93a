"""Inventory: which Dom0s to read, how to reach their guests, and the thresholds."""
