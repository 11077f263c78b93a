"""Output formats: HTML, JSON, CSV, Prometheus textfile and cfg patches."""
