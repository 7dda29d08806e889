"""Faust agents: the Kafka edge of segstream."""
