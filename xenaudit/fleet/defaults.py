"""Defaults of `xenaudit merge`, in a module of their own so `merge --help` imports nothing else."""

#: A Dom0 whose latest report is older than this many hours is listed as stale.
DEFAULT_STALE_AFTER_H = 36.0
#: A Dom0's folder is copied up to this size (MiB).
DEFAULT_MAX_DOM0_MIB = 1024
