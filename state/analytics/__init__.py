"""The notebooks' analytics, kept as exact counters beside the fold: baskets and bundles, cohorts,
best time, catalogue and traits, segment profiles, reviews. Independent of the evaluator."""
