"""Responsible AI and human-in-the-loop (lab 18): segment reports, model cards, the review queue."""
