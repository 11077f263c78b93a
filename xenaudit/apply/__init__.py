"""Applying a reviewed report to /etc/xen (and, where safe, to live domains)."""
