"""Defaults that `xenaudit apply --help` shows, kept apart so that showing them imports nothing."""

DEFAULT_STATE_DIR = "/var/lib/xenaudit"
