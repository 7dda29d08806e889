"""The customer models: clusters (``clusters``, ``cluster_rules``, ``reservoir``), BG/NBD lifetime
(``btyd``), churn (``churn``) with its calibration and health gate (``calibration``,
``model_health``), and the alert rules they feed (``alerts``)."""
