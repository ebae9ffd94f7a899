"""Run the examples' integration suites (placeholder until the examples land)."""
