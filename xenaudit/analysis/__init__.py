"""Analysis: diagnosis, sizing, history and the host plan."""
