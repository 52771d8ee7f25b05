"""How the stages run together: the data pipeline, train → register → promote, continuous
training and the local demo. The stages themselves live in `data/`, `features/`, `training/`,
`serving/` and `monitoring/`."""
