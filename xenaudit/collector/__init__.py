"""Guest collectors: SSH to live guests, or replay saved snapshots."""
