"""Training on the handbook's protocol: split, models, metrics, promotion rules (no mlflow here)."""
