"""The wire: event contracts and topic declarations."""
