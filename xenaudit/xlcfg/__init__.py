"""xl.cfg: a byte-preserving parser, editor and linter that reads files as libxlutil does."""
