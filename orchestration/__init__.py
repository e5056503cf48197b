"""The cluster layer: grids, tracking, submission, jobs, status, aggregation and tables."""
