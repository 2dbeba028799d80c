"""Cluster side of `launch`: runs inside the job's environment on Ray (never imports kubernetes)."""
