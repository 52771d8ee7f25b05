"""Model serving: the MLServer runtime (V2 inference protocol) and its launcher."""
