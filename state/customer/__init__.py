"""One customer: the pure RFM fold (``rfm``), their logged events and profiles (``profiles``), and the
ports of the stores that keep them (``store`` for the fold and its tallies, ``profile_store`` for the
evaluator's saved state). Imports nothing else of ``state``."""
