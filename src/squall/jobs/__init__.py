"""Jobs: the model, its lifecycle, the queue (claim, lease, reap) and the HTTP routes."""
