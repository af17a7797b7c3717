"""What the contract says: the spec text a request names, parsed within bounds, and its paths."""
