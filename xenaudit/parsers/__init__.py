"""Pure parsers of guest text: /proc files, ps output and kernel logs."""
