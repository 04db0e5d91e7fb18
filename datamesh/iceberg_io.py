"""Iceberg file I/O for a local lake: metadata, manifests and data files read and written with ``open``.

pyiceberg's default I/O (``PyArrowFileIO``) imports ``pyarrow.dataset`` and pandas,
and its fsspec I/O imports ``requests`` and its REST catalog's authentication:
together a fifth of a second of every CLI call that reads a product, for files
that are plain paths on this machine. This one imports nothing but the standard
library. It knows ``file://`` URIs and absolute paths only; an S3 lake keeps
pyiceberg's own I/O (see :meth:`datamesh.tables.TableStore._properties`).
"""

from __future__ import annotations

import os
from typing import Any

from pyiceberg.io import FileIO, InputFile, InputStream, OutputFile, OutputStream


def local_path(location: str) -> str:
    """The file system path of a local Iceberg location (``file://`` URI or path), exactly as written.

    Percent signs are not decoded: the platform records ``file://`` + the raw
    path, as fsspec's local file system reads it.
    """
    if location.startswith("file://"):
        path = location[len("file://"):]
    elif location.startswith("file:/"):
        path = location[len("file:"):]
    elif "://" in location:
        raise ValueError(f"{location!r} is not a local file: this lake's Iceberg I/O reads local files only")
    else:
        path = location
    return os.path.abspath(path)


class _LocalFile:
    """What a local input and output file share: the path of the location, its size, whether it exists."""

    location: str

    def __init__(self, location: str) -> None:
        super().__init__(location=location)  # type: ignore[call-arg]
        self._path = local_path(location)

    def __len__(self) -> int:
        return os.path.getsize(self._path)

    def exists(self) -> bool:
        return os.path.lexists(self._path)


class LocalInputFile(_LocalFile, InputFile):
    def open(self, seekable: bool = True) -> InputStream:
        return open(self._path, "rb")  # noqa: SIM115 (the caller closes the stream)


class LocalOutputFile(_LocalFile, OutputFile):
    def to_input_file(self) -> LocalInputFile:
        return LocalInputFile(self.location)

    def create(self, overwrite: bool = False) -> OutputStream:
        """A new file (its folders made); FileExistsError if it exists and ``overwrite`` is false.

        Without ``overwrite`` the file is created exclusively (``O_EXCL``), so a
        concurrent writer of the same name fails instead of being truncated.
        """
        os.makedirs(os.path.dirname(self._path), exist_ok=True)
        try:
            return open(self._path, "wb" if overwrite else "xb")  # noqa: SIM115 (the caller closes the stream)
        except FileExistsError:
            raise FileExistsError(f"Cannot create file, file already exists: {self.location}") from None


class LocalFileIO(FileIO):
    """pyiceberg ``FileIO`` over the local file system (``py-io-impl = datamesh.iceberg_io.LocalFileIO``)."""

    def __init__(self, properties: Any = None) -> None:
        super().__init__(properties=properties or {})

    def new_input(self, location: str) -> LocalInputFile:
        return LocalInputFile(location)

    def new_output(self, location: str) -> LocalOutputFile:
        return LocalOutputFile(location)

    def delete(self, location: str | InputFile | OutputFile) -> None:
        os.remove(local_path(location if isinstance(location, str) else location.location))
