"""xenaudit: audit the memory sizing of Xen guests from Dom0."""

__version__ = "0.1.0"
