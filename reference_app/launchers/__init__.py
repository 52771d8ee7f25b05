"""Local mode's server processes on 127.0.0.1: MLflow, MLServer, Prometheus and Alertmanager,
the drift exporter and the continuous-training controller, started and stopped from Python.
Kind mode runs the same commands as containers; nothing here runs in a cluster."""
