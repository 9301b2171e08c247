"""Baseline for the House Price task: Ridge regression on standardised numbers and one-hot
categories, fit on train.csv only.

Writes submission.csv with a SalePrice for every row of validation.csv and test.csv (by Id):
`validate` scores the validation rows, `submit` the hidden test rows.
"""

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import Ridge
from sklearn.metrics import mean_squared_error, r2_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

train = pd.read_csv("data/train.csv")
validation = pd.read_csv("data/validation.csv")
test = pd.read_csv("data/test.csv")

features = train.drop(columns=["Id", "SalePrice"])
numeric = features.select_dtypes(include=["int64", "float64"]).columns
categorical = features.columns.difference(numeric)

model = Pipeline([
    ("prepare", ColumnTransformer([
        ("numeric", Pipeline([("impute", SimpleImputer(strategy="mean")), ("scale", StandardScaler())]), numeric),
        ("categorical", Pipeline([
            ("impute", SimpleImputer(strategy="constant", fill_value="missing")),
            ("one_hot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
        ]), categorical),
    ])),
    ("ridge", Ridge(alpha=0.1)),
])
model.fit(features, train["SalePrice"])

for name, frame in (("train", train), ("validation", validation)):
    predicted = model.predict(frame.drop(columns=["Id", "SalePrice"]))
    rmse = np.sqrt(mean_squared_error(frame["SalePrice"], predicted))
    print(f"{name}: rmse {rmse:,.1f}, r2 {r2_score(frame['SalePrice'], predicted):.4f}")

rows = pd.concat([validation.drop(columns=["SalePrice"]), test])
pd.DataFrame({"Id": rows["Id"], "SalePrice": model.predict(rows.drop(columns=["Id"]))}).to_csv(
    "submission.csv", index=False)
print(f"wrote submission.csv ({len(rows)} rows: validation and test)")
