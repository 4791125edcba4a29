"""A dependency-free, deterministic PEP 517 backend, so tests can build path and git sources offline."""

import base64
import hashlib
import zipfile
from pathlib import Path

NAME, VERSION = "localfix", "2.0"
HERE = Path(__file__).resolve().parent


def get_requires_for_build_wheel(config_settings=None):
    return []


def _metadata():
    return f"Metadata-Version: 2.1\nName: {NAME}\nVersion: {VERSION}\n".encode()


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    dist_info = Path(metadata_directory) / f"{NAME}-{VERSION}.dist-info"
    dist_info.mkdir(parents=True, exist_ok=True)
    (dist_info / "METADATA").write_bytes(_metadata())
    return dist_info.name


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    files = {p.relative_to(HERE).as_posix(): p.read_bytes() for p in sorted((HERE / NAME).rglob("*"))
             if p.is_file() and "__pycache__" not in p.parts}
    di = f"{NAME}-{VERSION}.dist-info"
    files[f"{di}/METADATA"] = _metadata()
    files[f"{di}/WHEEL"] = b"Wheel-Version: 1.0\nGenerator: backend\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    record = "".join(f"{k},sha256={base64.urlsafe_b64encode(hashlib.sha256(v).digest()).rstrip(b'=').decode()},"
                     f"{len(v)}\n" for k, v in sorted(files.items()))
    files[f"{di}/RECORD"] = (record + f"{di}/RECORD,,\n").encode()
    name = f"{NAME}-{VERSION}-py3-none-any.whl"
    with zipfile.ZipFile(Path(wheel_directory) / name, "w") as zf:
        for k, v in sorted(files.items()):
            info = zipfile.ZipInfo(k, (1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            zf.writestr(info, v)
    return name
