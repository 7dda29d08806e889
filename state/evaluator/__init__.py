"""The evaluator: the event clock (``event_clock``), the instant-by-instant evaluation
(``evaluate``), the predictions step (``predict``), cluster quality (``cluster_quality``) and the
domain messages it publishes (``messages``)."""
