"""Point-in-time feature retrieval from Feast's offline store, run with `.venv-feast`'s Python.

`python offline.py ENTITY_ROWS OUT`: ENTITY_ROWS is a Parquet file with `CUSTOMER_ID`,
`TERMINAL_ID` and `event_timestamp` (UTC); OUT gets the same rows with every feature of the views
`customer_windows` and `terminal_risk` as Feast joins them for training: for each row, the
newest source row of its entity at or before `event_timestamp`, no older than the view's ttl
(`FeatureStore.get_historical_features`, feast/feature_store.py; the file offline store's join
is feast/infra/offline_stores/dask.py). A feature with no such row is null.

The feature repository is this file's folder; the configuration file is $FEAST_REPO_YAML
(default: feature_store.yaml here). Listed in .feastignore: `feast apply` does not import it.
"""

import os
import sys
from pathlib import Path

import pandas as pd
from feast import FeatureStore

REPO = Path(__file__).resolve().parent
VIEWS = ("customer_windows", "terminal_risk")


def main(entity_rows: str, out: str) -> None:
    yaml = Path(os.environ.get("FEAST_REPO_YAML") or REPO / "feature_store.yaml")
    store = FeatureStore(repo_path=str(REPO), fs_yaml_file=yaml)
    features = [
        f"{view.name}:{f.name}" for view in store.list_feature_views() for f in view.features
    ]
    features = [f for f in features if f.split(":", 1)[0] in VIEWS]
    rows = pd.read_parquet(entity_rows)
    rows["event_timestamp"] = pd.to_datetime(rows["event_timestamp"], utc=True)
    rows["_ROW"] = range(len(rows))
    joined = store.get_historical_features(entity_df=rows, features=features).to_df()
    joined.sort_values("_ROW").drop(columns="_ROW").to_parquet(out, index=False)


if __name__ == "__main__":
    main(*sys.argv[1:3])
