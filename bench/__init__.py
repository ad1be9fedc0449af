"""Benchmarks: our server against stock MLflow and FastTrackML through the same MLflow REST API workloads."""
