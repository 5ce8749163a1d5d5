"""Writing outputs: atomically, only under the output directory, Excel-safe.

* Every file is written to a temporary name in the same folder and renamed
  into place, so a crash or Ctrl-C never leaves a half-written report.
* A relative name that would resolve outside the output directory (``..``,
  an absolute path, a symlink pointing out) is refused.
* Text cells starting with ``=``, ``+``, ``-``, ``@`` (or tab/CR) are prefixed
  with ``'`` in CSVs, so a spreadsheet never runs them as formulas (OWASP
  "CSV injection").  Numeric columns are left untouched.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from hotspots._errors import ConfigError

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise_formulas(df: pd.DataFrame) -> pd.DataFrame:
    """Copy of ``df`` whose text cells cannot start a spreadsheet formula.

    >>> neutralise_formulas(pd.DataFrame({"a": ["=1+1", "ok", "-x"], "n": [-1, 2, 3]}))["a"].tolist()
    ["'=1+1", 'ok', "'-x"]
    """
    out = df.copy()
    for col in out.columns:
        s = out[col]
        if s.dtype == object or pd.api.types.is_string_dtype(s):
            mask = s.astype(str).str.startswith(_FORMULA_START) & s.notna()
            if mask.any():
                out[col] = s.astype(object).where(~mask, "'" + s.astype(str))
    return out


class OutputDir:
    """The run's output directory; every write goes through it."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).expanduser().resolve()
        self.written: list[dict[str, Any]] = []
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create output directory {self.root} ({exc})", hint="choose another --out") from exc

    def path(self, name: str | os.PathLike) -> Path:
        """Absolute path for ``name``, refusing anything outside the output directory."""
        rel = Path(name)
        if rel.is_absolute() or ".." in rel.parts:
            raise ConfigError(
                f"output name {str(name)!r} would be written outside the output directory {self.root}",
                hint="output names must be plain relative paths",
            )
        target = (self.root / rel).resolve()
        if target != self.root and self.root not in target.parents:
            raise ConfigError(
                f"output {str(name)!r} resolves to {target}, outside {self.root}",
                hint="remove the symbolic link or choose another --out",
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        return target

    @contextlib.contextmanager
    def atomic(self, name: str, mode: str = "w", **kwargs):
        """Open a temporary file; rename it to ``name`` only if the block succeeds."""
        target = self.path(name)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
        os.close(fd)
        try:
            with open(tmp, mode, **kwargs) as fh:
                yield fh
            # mkstemp creates 0600 files; give outputs the usual permissions (umask applies)
            os.chmod(tmp, 0o666 & ~_umask())
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        self._record(target)

    def atomic_path(self, name: str):
        """Context manager yielding a temporary path to write with a library; renamed on success."""
        return _AtomicPath(self, name)

    def _record(self, target: Path) -> None:
        rel = str(target.relative_to(self.root))
        self.written = [w for w in self.written if w["path"] != rel]
        self.written.append({"path": rel, "bytes": target.stat().st_size, "sha256": _file_sha256(target)})

    def write_csv(self, df: pd.DataFrame, name: str) -> Path:
        with self.atomic(name, "w", newline="", encoding="utf-8") as fh:
            neutralise_formulas(df).to_csv(fh, index=False)
        return self.root / name

    def write_text(self, text: str, name: str) -> Path:
        with self.atomic(name, "w", encoding="utf-8") as fh:
            fh.write(text)
        return self.root / name

    def write_bytes(self, data: bytes, name: str) -> Path:
        with self.atomic(name, "wb") as fh:
            fh.write(data)
        return self.root / name

    def write_json(self, obj: Any, name: str) -> Path:
        return self.write_text(json.dumps(obj, indent=2, default=_json_default, ensure_ascii=False) + "\n", name)

    def write_geo(self, gdf, name: str, *, layer: str | None = None) -> Path:
        """Write a GeoDataFrame to GeoPackage (``.gpkg``) or GeoJSON (``.geojson``, WGS84)."""
        with self.atomic_path(name) as tmp:
            suffix = Path(name).suffix.lower()
            if suffix == ".geojson":
                gdf.to_crs(4326).to_file(tmp, driver="GeoJSON", engine="pyogrio")
            else:
                gdf.to_file(tmp, driver="GPKG", layer=layer or Path(name).stem, engine="pyogrio")
        return self.root / name


class _AtomicPath:
    def __init__(self, out: OutputDir, name: str):
        self.out, self.name = out, name

    def __enter__(self) -> Path:
        self.target = self.out.path(self.name)
        self.tmp = self.target.with_name(f".{self.target.stem}.part{self.target.suffix}")
        with contextlib.suppress(FileNotFoundError):
            self.tmp.unlink()
        return self.tmp

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            os.replace(self.tmp, self.target)
            self.out._record(self.target)
        else:
            with contextlib.suppress(FileNotFoundError):
                self.tmp.unlink()
        return False


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _json_default(obj):
    import numpy as np

    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return None if np.isnan(obj) else float(obj)
    if isinstance(obj, (np.ndarray,)):
        return obj.tolist()
    if isinstance(obj, (Path,)):
        return str(obj)
    if isinstance(obj, (set, tuple)):
        return list(obj)
    return str(obj)
