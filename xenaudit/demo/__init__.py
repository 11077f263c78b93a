"""The bundled demo fleet, replayed through the same code paths as a real run."""
