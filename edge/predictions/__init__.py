"""Predictions: the model service (scheduled and on-demand scoring), scoring, its tables and views."""
