"""Sweep orchestration: CLI, search spaces, Tune wiring, MLflow tracking, reports."""
