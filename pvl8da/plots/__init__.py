"""Quicklook figures (PNG) for products, inference results and evaluations."""
