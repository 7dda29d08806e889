"""Customer state: the pure RFM fold and the stores that keep it."""
