"""Weather data: hourly observations -> cleaned grid -> split -> windows.

The bundled file (`tasks/data/nyc_weather_2013.csv.gz`, built by
`tasks/data/build_weather.py`) has one row per station and UTC hour:

    time_utc,station,temp_c,dewp_c,humid_pct,wind_u_ms,wind_v_ms,precip_mm,pressure_hpa,visib_km
    2013-01-01 06:00,EWR,3.90,-3.30,59.37,4.63,0.00,0.00,1012.00,16.09

Loading cleans it in counted steps (`Observations.report`):
1. reindex every station onto one hourly grid (missing hours become NaN);
2. fill a station's missing pressure with the mean of the other stations at the
   same hour (the airports are ~20 km apart; their pressures differ by 0.4 hPa
   on average);
3. interpolate gaps of at most `max_gap` hours linearly; longer gaps stay NaN,
   and every window that touches one is dropped (`window_anchors`).
Time of day and day of year are added as sin/cos features.
"""

from __future__ import annotations

import csv
import dataclasses
import gzip
import io
import os
import zipfile
from pathlib import Path
from typing import Iterable

import numpy as np

from tasks.common.bundled import read_bundled
from tasks.common.datasets import DatasetError

BUNDLED = "nyc_weather_2013.csv.gz"
FEATURES = [
    "temp_c", "dewp_c", "humid_pct", "wind_u_ms", "wind_v_ms", "precip_mm",
    "pressure_hpa", "visib_km",
]  # fmt: skip
TARGET = "temp_c"
TIME_FEATURES = ["hour_sin", "hour_cos", "year_sin", "year_cos"]
SPLITS = ("train", "validation", "test")
DATASETS = ("nyc", "jena")
HOURS_PER_YEAR = 24 * 365.2425

# Per-station series as read from a file: station -> (hours, values (n, features)).
Series = dict[str, tuple[np.ndarray, np.ndarray]]


@dataclasses.dataclass
class Observations:
    """Hourly values on one grid; NaN where missing.

    Attributes:
        hours: consecutive hours since 1970-01-01 00:00 UTC, shape (time,).
        values: shape (time, stations, features).
        stations, features: names along the last two axes.
        report: cleaning counts, by step.
    """

    hours: np.ndarray
    values: np.ndarray
    stations: list[str]
    features: list[str]
    report: dict[str, int]


# Reading -------------------------------------------------------------------------


def parse_hour(text: str) -> int:
    """Hours since the epoch for 'YYYY-MM-DD HH:MM' (UTC, whole hours only)."""
    stamp = np.datetime64(text.strip().replace(" ", "T"), "m")
    minutes = int(stamp.astype("int64"))
    if minutes % 60:
        raise ValueError(f"timestamp {text!r} is not on a whole hour")
    return minutes // 60


def format_hour(hour: int) -> str:
    return str(np.datetime64(int(hour), "h").astype("datetime64[m]")).replace("T", " ")


def read_long_csv(
    lines: Iterable[str], features: list[str], allow_missing: bool = True
) -> Series:
    """Rows `time_utc,station,<features>` -> per-station hours and values.

    Raises ValueError naming the problem: a missing column, a row with more
    or fewer fields than the header, an empty station, a timestamp that does
    not parse, a non-numeric value, an empty or NaN value (unless
    `allow_missing`), or timestamps of a station out of order or repeated.
    """
    reader = csv.DictReader(lines)
    needed = ["time_utc", "station", *features]
    absent = [c for c in needed if c not in (reader.fieldnames or [])]
    if absent:
        raise ValueError(f"missing column(s): {', '.join(absent)}")
    hours: dict[str, list[int]] = {}
    values: dict[str, list[list[float]]] = {}
    for row in reader:
        line = reader.line_num  # in the file, blank lines counted
        _check_field_count(row, line)
        if not row["station"].strip():
            raise ValueError(f"line {line}: station is empty")
        try:
            hour = parse_hour(row["time_utc"])
        except ValueError:
            raise ValueError(
                f"line {line}: time_utc {row['time_utc']!r} is not "
                "'YYYY-MM-DD HH:00' (UTC)"
            ) from None
        numbers = [_number(row[name], name, line, allow_missing) for name in features]
        station = row["station"].strip()
        previous = hours.setdefault(station, [])
        if previous and hour <= previous[-1]:
            problem = "duplicated" if hour in previous[-1:] else "not sorted"
            raise ValueError(
                f"line {line}: timestamps of station {station} are {problem} "
                f"({row['time_utc']} after {format_hour(previous[-1])})"
            )
        previous.append(hour)
        values.setdefault(station, []).append(numbers)
    return {
        s: (np.array(hours[s], dtype="int64"), np.array(values[s], dtype="float64"))
        for s in hours
    }


def _check_field_count(row: dict, line: int) -> None:
    """ValueError if a `csv.DictReader` row has more or fewer fields than the
    header (csv keys the extra ones None, or gives the missing ones None)."""
    if None in row or None in row.values():
        more = "more" if None in row else "fewer"
        header = sum(key is not None for key in row)
        raise ValueError(f"line {line}: {more} fields than the header's {header}")


def _number(text: str | None, name: str, line: int, allow_missing: bool) -> float:
    text = (text or "").strip()
    if text in ("", "NA"):
        if allow_missing:
            return float("nan")
        raise ValueError(f"line {line}: {name} is missing (empty)")
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"line {line}: {name} = {text!r} is not a number") from None
    if not np.isfinite(value) and not allow_missing:
        raise ValueError(f"line {line}: {name} = {text!r} is not a finite number")
    return value


def to_grid(series: Series, features: list[str], stations: list[str]) -> Observations:
    """Reindexes every station onto the hours from the first to the last row."""
    start = min(int(h[0]) for h, _ in series.values())
    end = max(int(h[-1]) for h, _ in series.values()) + 1
    values = np.full((end - start, len(stations), len(features)), np.nan)
    report = {}
    for s, station in enumerate(stations):
        hours, rows = series[station]
        values[hours - start, s] = rows
        report[f"hours_missing_{station}"] = end - start - len(hours)
    report["hours"] = end - start
    return Observations(np.arange(start, end), values, stations, features, report)


def load_nyc() -> Observations:
    """The bundled 2013 observations of EWR, JFK and LGA, on one hourly grid."""
    text = gzip.decompress(read_bundled(BUNDLED)).decode("utf-8")
    series = read_long_csv(io.StringIO(text), FEATURES)
    return to_grid(series, FEATURES, sorted(series))


# Jena climate (Max Planck Institute for Biogeochemistry, 2009-2016, every 10 min).
JENA_URL = (
    "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
    "jena_climate_2009_2016.csv.zip"
)
JENA_COLUMNS = {  # our name: Jena column (wind is turned into vectors below)
    "temp_c": "T (degC)",
    "dewp_c": "Tdew (degC)",
    "humid_pct": "rh (%)",
    "pressure_hpa": "p (mbar)",
    "vp_max_hpa": "VPmax (mbar)",
    "vp_act_hpa": "VPact (mbar)",
    "vp_def_hpa": "VPdef (mbar)",
    "sh_g_kg": "sh (g/kg)",
    "h2oc_mmol_mol": "H2OC (mmol/mol)",
    "rho_g_m3": "rho (g/m**3)",
}
JENA_FEATURES = [*JENA_COLUMNS, "wind_u_ms", "wind_v_ms", "gust_u_ms", "gust_v_ms"]


JENA_CSV = "jena_climate_2009_2016.csv"
# The numbers _jena_row reads from a row, in its order; and every column needed.
JENA_READ = [*JENA_COLUMNS.values(), "wv (m/s)", "max. wv (m/s)", "wd (deg)"]
JENA_NEEDED = ["Date Time", *JENA_READ]


def keras_home() -> Path:
    """Keras' cache folder (`$KERAS_HOME`, default ~/.keras)."""
    return Path(os.environ.get("KERAS_HOME") or "~/.keras").expanduser()


def jena_csv_path() -> Path:
    """The Jena CSV (or the zip holding it) from Keras' cache, or downloaded
    (once) and unpacked with `keras.utils.get_file`.

    Found offline in `$KERAS_HOME/datasets`: what `get_file(origin=JENA_URL,
    extract=True)` leaves there (Keras 3 returns the folder it extracted
    into; older versions the file), or the plain `jena_climate_2009_2016.csv.zip`
    that Keras' own Jena tutorial downloads. Raises `DatasetError` (one line:
    where it looked, how to get the file) when neither is there and the
    download fails.
    """
    import keras

    zipped = keras_home() / "datasets" / f"{JENA_CSV}.zip"
    cached = cached_jena(zipped.parent)
    if cached:
        return cached
    try:
        path = Path(
            keras.utils.get_file(
                origin=JENA_URL, extract=True, cache_dir=str(keras_home())
            )
        )
    except Exception as error:  # get_file raises a bare Exception offline
        why = (str(error).splitlines() or [""])[0][:200]
        # Keras' download makes a folder of that name (and unpacks into it).
        clear = f", in place of the folder {zipped}" if zipped.is_dir() else ""
        raise DatasetError(
            f"Jena climate data is not in Keras' cache {zipped.parent} and "
            f"downloading it failed ({why}): download {JENA_URL} into that "
            f"folder (keep the name {zipped.name}{clear}), or pass --jena-csv "
            f"PATH to a local {JENA_CSV} or its .zip"
        ) from error
    if path.is_file() and path.suffix == ".csv":
        return path
    folder = path if path.is_dir() else path.parent
    found = sorted(folder.glob(f"**/{JENA_CSV}"))
    if not found:
        raise DatasetError(f"no Jena climate CSV ({JENA_CSV}) under {path}")
    return found[0]


def cached_jena(datasets: Path) -> Path | None:
    """The Jena data already in Keras' cache folder `datasets`, or None: the
    zip that Keras' Jena tutorial downloads, the zip Keras 3's `get_file`
    downloads (`..._archive`), or else a CSV that `get_file` unpacked (Keras 2
    into `datasets`; Keras 3 into a folder named like the zip)."""
    zipped = datasets / f"{JENA_CSV}.zip"
    if zipped.is_file():
        return zipped
    archive = datasets / f"{zipped.name}_archive"  # Keras 3's download
    if zipfile.is_zipfile(archive):  # complete, unlike a half-unpacked CSV
        return archive
    for pattern in (JENA_CSV, f"{zipped.name}/**/{JENA_CSV}"):
        found = sorted(p for p in datasets.glob(pattern) if p.is_file())
        if found:
            return found[0]
    return None


def load_jena(path: str | Path | None = None) -> Observations:
    """Jena climate, the on-the-hour rows (as in Chollet's example), one station.

    Wind speeds of -9999 (sensor errors) become missing; a repeated hour keeps
    its first row. `path`: a Jena CSV or a zip holding one; by default the one
    in Keras' cache (`jena_csv_path`).
    """
    path = Path(path) if path else jena_csv_path()
    rows = _jena_hourly_rows(path)
    if not rows:
        raise DatasetError(
            f"{path}: no rows on the hour (Date Time 'DD.MM.YYYY HH:00:00')"
        )
    report = {"jena_hourly_rows": len(rows), "jena_wind_errors_set_missing": 0}
    hours, values, seen = [], [], set()
    for line, row in rows:
        try:
            hour, numbers = _jena_row(row, line)
        except ValueError as error:
            raise DatasetError(f"{path}, {error}") from None
        if hour in seen:
            continue
        seen.add(hour)
        errors = np.array([numbers[-3], numbers[-2]]) < 0  # speeds; NaN: False
        report["jena_wind_errors_set_missing"] += int(errors.sum())
        speeds = np.where(errors, np.nan, numbers[-3:-1])
        radians = np.radians(numbers[-1])
        vector = np.stack([-speeds * np.sin(radians), -speeds * np.cos(radians)], 1)
        hours.append(hour)
        values.append(numbers[:-3] + vector.ravel().tolist())
    report["jena_repeated_hours_dropped"] = len(rows) - len(hours)
    order = np.argsort(hours)
    series = {"jena": (np.array(hours)[order], np.array(values)[order])}
    observations = to_grid(series, JENA_FEATURES, ["jena"])
    observations.report = {**report, **observations.report}
    return observations


def _jena_row(row: dict, line: int) -> tuple[int, list[float]]:
    """(hour, the `JENA_READ` values) of one row; an empty or
    NA value is missing (NaN). Raises ValueError naming the line and column."""
    _check_field_count(row, line)
    stamp = row["Date Time"]
    try:
        day, time = stamp.split()
        d, m, y = day.split(".")
        hour = parse_hour(f"{y}-{m}-{d} {time[:5]}")
    except ValueError:
        raise ValueError(
            f"line {line}: Date Time {stamp!r} is not 'DD.MM.YYYY HH:MM:SS'"
        ) from None
    values = [_number(row[c], c, line, allow_missing=True) for c in JENA_READ]
    for column, value in zip(JENA_READ, values):
        if np.isinf(value):  # NaN is missing; an infinity is an error
            raise ValueError(f"line {line}: {column} = {row[column]!r} is not finite")
    return hour, values


def _jena_hourly_rows(path: Path) -> list[tuple[int, dict]]:
    """(line, row) of the on-the-hour rows of a Jena CSV, or of the Jena CSV
    inside a zip. Raises DatasetError for a file that is not one."""
    if not path.is_file():
        what = "a folder, not a file" if path.is_dir() else "no such file"
        raise DatasetError(f"Jena climate CSV {path}: {what}")
    try:
        if zipfile.is_zipfile(path):
            return _read_jena_zip(path)
        if path.suffix.lower() == ".zip":
            raise DatasetError(
                f"{path} is not a valid zip archive (a cut-off download?): "
                f"delete it and download {JENA_URL} again"
            )
        with open(path, newline="", encoding="utf-8-sig") as f:
            return _read_jena(f, path)
    except UnicodeDecodeError as error:
        raise DatasetError(f"{path} is not UTF-8 text ({error})") from None
    except zipfile.BadZipFile as error:  # a damaged member, say
        raise DatasetError(f"{path} is a damaged zip archive ({error})") from None


def _read_jena_zip(path: Path) -> list[tuple[int, dict]]:
    with zipfile.ZipFile(path) as archive:
        names = [n for n in archive.namelist() if Path(n).name == JENA_CSV]
        names = names or [n for n in archive.namelist() if n.endswith(".csv")]
        names = [n for n in names if not n.startswith("__MACOSX")]
        if not names:
            raise DatasetError(f"{path}: a zip without {JENA_CSV} (no .csv inside)")
        with archive.open(names[0]) as raw:
            text = io.TextIOWrapper(raw, "utf-8-sig", newline="")
            return _read_jena(text, path)


def _read_jena(lines, path: Path) -> list[tuple[int, dict]]:
    reader = csv.DictReader(lines)
    missing = [c for c in JENA_NEEDED if c not in (reader.fieldnames or [])]
    if missing:
        raise DatasetError(
            f"{path} is not a Jena climate CSV: no column {', '.join(missing)}"
        )
    return [
        (reader.line_num, r) for r in reader if (r["Date Time"] or "")[14:16] == "00"
    ]


# Cleaning ------------------------------------------------------------------------


def fill_from_other_stations(obs: Observations, feature: str) -> int:
    """Fills a station's missing `feature` with the other stations' mean, in place."""
    column = obs.values[:, :, obs.features.index(feature)]
    filled = 0
    for s in range(len(obs.stations)):
        others = np.delete(column, s, axis=1)
        known = ~np.isnan(others).all(axis=1)
        holes = np.isnan(column[:, s]) & known
        column[holes, s] = np.nanmean(others[holes], axis=1)
        filled += int(holes.sum())
    obs.values[:, :, obs.features.index(feature)] = column
    return filled


def interpolate_short_gaps(series: np.ndarray, max_gap: int) -> tuple[np.ndarray, int]:
    """Linear interpolation across runs of at most `max_gap` NaNs.

    Runs that are longer, or that touch either end, stay NaN.
    Returns the filled copy and the number of values filled.
    """
    out = series.astype("float64").copy()
    missing = np.isnan(out)
    filled, t = 0, 0
    while t < len(out):
        if not missing[t]:
            t += 1
            continue
        end = t
        while end < len(out) and missing[end]:
            end += 1
        if 0 < t and end < len(out) and end - t <= max_gap:
            weights = np.arange(1, end - t + 1) / (end - t + 1)
            out[t:end] = out[t - 1] + weights * (out[end] - out[t - 1])
            filled += end - t
        t = end
    return out, filled


def clean(
    obs: Observations, max_gap: int, spans: Iterable[tuple[int, int]] = ()
) -> Observations:
    """Cross-station pressure fill, then short-gap interpolation; counts in report.

    `spans`: [start, end) rows of the splits, interpolated one by one, so that
    no value of a split is filled from another's (a gap that straddles a
    boundary stays missing); by default the whole series is one span.
    """
    spans = list(spans) or [(0, len(obs.hours))]
    report = dict(obs.report)
    report["values_missing_before_cleaning"] = int(np.isnan(obs.values).sum())
    if len(obs.stations) > 1 and "pressure_hpa" in obs.features:
        report["pressure_filled_from_other_stations"] = fill_from_other_stations(
            obs, "pressure_hpa"
        )
    values = obs.values.copy()
    interpolated = 0
    for start, end in spans:
        for s in range(values.shape[1]):
            for f in range(values.shape[2]):
                values[start:end, s, f], n = interpolate_short_gaps(
                    values[start:end, s, f], max_gap
                )
                interpolated += n
    report[f"values_interpolated_gaps_up_to_{max_gap}h"] = interpolated
    report["values_missing_in_long_gaps"] = int(np.isnan(values).sum())
    return dataclasses.replace(obs, values=values, report=report)


# Features, splits and windows ----------------------------------------------------


def time_features(hours: np.ndarray) -> np.ndarray:
    """(time, 4): sin/cos of the hour of day (UTC) and of the position in the year."""
    day = 2 * np.pi * (hours % 24) / 24
    year = 2 * np.pi * hours / HOURS_PER_YEAR
    return np.stack([np.sin(day), np.cos(day), np.sin(year), np.cos(year)], axis=1)


def feature_matrix(obs: Observations) -> tuple[np.ndarray, list[str]]:
    """(time, stations * features + 4) inputs and their names ('EWR:temp_c'...)."""
    flat = obs.values.reshape(len(obs.hours), -1)
    names = [f"{s}:{f}" for s in obs.stations for f in obs.features]
    return np.concatenate([flat, time_features(obs.hours)], 1), names + TIME_FEATURES


def split_bounds(
    length: int, validation_fraction: float, test_fraction: float
) -> dict[str, tuple[int, int]]:
    """Chronological [start, end) rows of train / validation / test."""
    test_start = length - round(test_fraction * length)
    validation_start = test_start - round(validation_fraction * length)
    return {
        "train": (0, validation_start),
        "validation": (validation_start, test_start),
        "test": (test_start, length),
    }


def window_anchors(
    x: np.ndarray,
    targets: np.ndarray,
    bounds: tuple[int, int],
    lookback: int,
    horizons: list[int],
) -> tuple[np.ndarray, int]:
    """Last input rows t of windows that lie wholly inside `bounds`.

    Window t reads inputs t-lookback+1..t and targets at t+h for every horizon;
    all of them lie in [start, end) and none is NaN. Returns the anchors and
    how many in-bounds windows were dropped for touching a gap.
    """
    start, end = bounds
    anchors = np.arange(start + lookback - 1, end - max(horizons))
    if len(anchors) == 0:
        return anchors, 0
    bad_row = np.isnan(x).any(axis=1) | np.isnan(targets).any(axis=1)
    bad_inputs = np.concatenate([[0], np.cumsum(np.isnan(x).any(axis=1))])
    touched = bad_inputs[anchors + 1] - bad_inputs[anchors + 1 - lookback] > 0
    for h in horizons:
        touched |= bad_row[anchors + h]
    return anchors[~touched], int(touched.sum())


class Windows:
    """Input windows gathered on demand: `windows[rows]` -> (rows, lookback, features).

    Holds one copy of the series instead of `lookback` copies, so even Jena's
    70,000 hours fit in memory; `ArrayBatches` indexes it like an array.
    """

    def __init__(self, x: np.ndarray, anchors: np.ndarray, lookback: int):
        self.x, self.anchors = x.astype("float32"), anchors
        self.offsets = np.arange(1 - lookback, 1)

    def __len__(self) -> int:
        return len(self.anchors)

    def __getitem__(self, rows) -> np.ndarray:
        return self.x[self.anchors[rows][:, None] + self.offsets]


def future(temps: np.ndarray, anchors: np.ndarray, horizons: list[int]) -> np.ndarray:
    """Observed temperatures at t+h: (windows, horizons, stations)."""
    return np.stack([temps[anchors + h] for h in horizons], axis=1)


def latest_window(
    series: Series, stations: list[str], features: list[str], lookback: int
) -> tuple[np.ndarray, np.ndarray]:
    """The last `lookback` hours of every station, checked complete.

    Returns (hours, values (lookback, stations, features)). Raises ValueError
    naming a missing station, too few rows, a missing hour, a station ending at
    another hour than the rest, or a missing (empty / NaN) value.
    """
    absent = [s for s in stations if s not in series]
    if absent:
        raise ValueError(
            f"no rows for station(s) {', '.join(absent)}; the model reads "
            f"{', '.join(stations)}"
        )
    ends = {s: int(series[s][0][-1]) for s in stations}
    if len(set(ends.values())) > 1:
        shown = ", ".join(f"{s} {format_hour(h)}" for s, h in ends.items())
        raise ValueError(f"stations end at different hours ({shown})")
    out = []
    for station in stations:
        hours, values = series[station]
        if len(hours) < lookback:
            raise ValueError(
                f"too few rows: station {station} has {len(hours)} hours, the model "
                f"reads the last {lookback}"
            )
        hours, values = hours[-lookback:], values[-lookback:]
        if hours[-1] - hours[0] != lookback - 1:
            raise ValueError(
                f"station {station}: hours missing between {format_hour(hours[0])} "
                f"and {format_hour(hours[-1])}; the last {lookback} hours must be "
                "consecutive"
            )
        bad = np.argwhere(~np.isfinite(values))
        if len(bad):
            row, column = bad[0]
            value = values[row, column]
            problem = "is missing (empty or NaN)" if np.isnan(value) else f"= {value}"
            raise ValueError(
                f"station {station}, {format_hour(hours[row])}: "
                f"{features[column]} {problem}; the last {lookback} hours must be "
                "complete and finite"
            )
        out.append(values)
    return hours, np.stack(out, axis=1)
