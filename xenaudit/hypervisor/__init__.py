"""Hypervisor sources: `xl`, libvirt, and replayed snapshots."""
