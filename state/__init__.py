"""The domain and its stores, in rooms by role, lowest first (``make lint`` enforces the order):
``customer`` (the fold and the store ports), ``segments``, ``models``, ``campaigns``, then
``evaluator`` and ``analytics`` (independent of each other), and ``adapters`` (Redis) on top."""
