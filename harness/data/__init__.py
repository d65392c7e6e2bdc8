"""Datasets: generation, preparation and loading (one module per dataset)."""
