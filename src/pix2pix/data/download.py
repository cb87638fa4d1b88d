"""Download the standard pix2pix datasets: streamed, resumable, verified, safely extracted.

``download`` fetches ``{base_url}/{name}.tar.gz`` into ``out/{name}.tar.gz.part`` (resumed with an
HTTP Range request when a part is already there), renames it once complete, reads the whole archive
(gzip CRC, every tar member, optional SHA-256) and checks every member's path before anything is
extracted, then extracts into a staging folder that is renamed into place only when complete.
"""
from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tarfile
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Optional

log = logging.getLogger(__name__)

BASE_URL = "http://efrosgans.eecs.berkeley.edu/pix2pix/datasets"
CHUNK = 1 << 20


@dataclass(frozen=True)
class RemoteDataset:
    name: str
    description: str
    source: str


DATASETS = {d.name: d for d in (
    RemoteDataset("facades", "architectural label maps -> facade photos; 400 training pairs",
                  "CMP Facade Database (Tylecek & Sara, 2013)"),
    RemoteDataset("cityscapes", "semantic label maps -> street photos; 2975 training pairs",
                  "Cityscapes (Cordts et al., 2016); its own licence terms apply"),
    RemoteDataset("maps", "aerial photos <-> map tiles of New York; 1096 training pairs",
                  "scraped from Google Maps by the pix2pix authors"),
    RemoteDataset("edges2shoes", "HED edges -> shoe photos; about 50k training pairs",
                  "UT Zappos50K (Yu & Grauman, 2014), edges by HED"),
    RemoteDataset("edges2handbags", "HED edges -> handbag photos; about 137k training pairs",
                  "Amazon handbag photos from iGAN (Zhu et al., 2016), edges by HED"),
    RemoteDataset("night2day", "night -> day photos of the same webcam views; about 20k pairs",
                  "Transient Attributes (Laffont et al., 2014)"),
)}


class DownloadError(ValueError):
    """A download or archive problem; the message says what happened and what to do."""


# ---- fetching ---------------------------------------------------------------------------------------

def _content_range_start(value: Optional[str]) -> tuple[Optional[int], Optional[int]]:
    """'bytes 100-199/1000' -> (100, 1000); total may be None ('*')."""
    try:
        unit, rng = value.split(" ", 1)
        span, total = rng.split("/")
        return int(span.split("-")[0]), (None if total.strip() == "*" else int(total))
    except (AttributeError, ValueError):
        return None, None


def fetch(url: str, dest: str | Path, *, progress: bool = False, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``dest``, resuming ``dest.part`` with an HTTP Range request.

    The server's ETag (or Last-Modified) is kept beside the part and sent as If-Range, so a file that
    changed on the server is fetched again from the start instead of being spliced. An interrupted
    transfer keeps the part and raises DownloadError; calling again resumes it.
    """
    from tqdm import tqdm

    dest = Path(dest)
    if dest.is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part, meta_path = dest.with_name(dest.name + ".part"), dest.with_name(dest.name + ".part.json")
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    if meta.get("url") != url and part.exists():
        part.unlink()  # a part of some other file
    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": "pix2pix-data/1"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
        if meta.get("validator"):
            headers["If-Range"] = meta["validator"]
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and offset and meta.get("total") == offset:
            part.rename(dest)  # the part was already complete
            meta_path.unlink(missing_ok=True)
            return dest
        if e.code == 416:  # our part is longer than the file: start over
            part.unlink()
            meta_path.unlink(missing_ok=True)
            return fetch(url, dest, progress=progress, timeout=timeout)
        hint = "check the dataset name and --base-url" if e.code == 404 else "try again later"
        raise DownloadError(f"{url}: HTTP {e.code} {e.reason}; {hint}") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise DownloadError(f"cannot reach {url} ({reason}); check the network or --base-url"
                            + (f"; the partial download {part} is kept for resuming" if offset else "")) from None
    with response:
        if response.status == 206:
            start, total = _content_range_start(response.headers.get("Content-Range"))
            if start != offset:
                raise DownloadError(f"{url}: the server resumed at byte {start}, not {offset}; delete {part} "
                                    f"and run again")
            mode = "ab"
            log.info("resuming %s at %d bytes", url, offset)
        else:  # 200: no range support, or the file changed (If-Range): start from zero
            if offset:
                log.info("server sent the whole file; restarting %s", url)
            offset, mode = 0, "wb"
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
        validator = response.headers.get("ETag") or response.headers.get("Last-Modified")
        meta = {"url": url, "validator": validator, "total": total}
        meta_path.write_text(json.dumps(meta))
        if total is not None:
            free = shutil.disk_usage(dest.parent).free
            if total - offset > free:
                raise DownloadError(f"{url} needs {(total - offset) / 1e9:.2f} GB more but {dest.parent} has "
                                    f"{free / 1e9:.2f} GB free; free some space or choose --out elsewhere")
        got = offset
        try:
            with open(part, mode) as f, tqdm(total=total, initial=offset, unit="B", unit_scale=True,
                                             unit_divisor=1024, desc=dest.name, disable=not progress,
                                             dynamic_ncols=True) as bar:
                while True:
                    chunk = response.read(CHUNK)
                    if not chunk:
                        break
                    f.write(chunk)
                    got += len(chunk)
                    bar.update(len(chunk))
        except (OSError, ConnectionError) as e:  # includes timeouts and IncompleteRead
            raise DownloadError(f"download of {url} interrupted at {got:,} of {total or '?'} bytes ({e}); "
                                f"run the same command again to resume") from None
    if total is not None and got != total:
        raise DownloadError(f"download of {url} stopped at {got:,} of {total:,} bytes; run the same command "
                            f"again to resume")
    part.rename(dest)
    meta_path.unlink(missing_ok=True)
    return dest


# ---- verifying and extracting --------------------------------------------------------------------------

def _member_problem(member: tarfile.TarInfo) -> Optional[str]:
    """Why ``member`` must not be extracted, or None."""
    name = member.name
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return "absolute path"
    if ".." in PurePosixPath(name.replace("\\", "/")).parts:  # backslashes too, for Windows users
        return "path leaves the target folder (..)"
    if member.issym() or member.islnk():
        return f"link to {member.linkname!r}"
    if not (member.isfile() or member.isdir()):
        return "device, pipe or other special file"
    return None


def verify_archive(path: str | Path, sha256: Optional[str] = None) -> tuple[str, list[str]]:
    """Read the whole archive: (SHA-256 hex, member names). Raises DownloadError if it is corrupt,
    truncated, not the expected SHA-256, or holds a member that would land outside the target."""
    path = Path(path)
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            digest.update(block)
    hexdigest = digest.hexdigest()
    if sha256 and hexdigest.lower() != sha256.lower().strip():
        raise DownloadError(f"{path}: SHA-256 is {hexdigest}, expected {sha256}; the file is damaged or not "
                            f"the one expected. Delete it and run again")
    bad, names = [], []
    try:
        with tarfile.open(path, "r:*") as tar:
            for member in tar:
                problem = _member_problem(member)
                if problem:
                    bad.append(f"{member.name} ({problem})")
                elif member.isfile():
                    # Reading every byte runs the gzip CRC check and catches truncation.
                    with tar.extractfile(member) as data:
                        while data.read(CHUNK):
                            pass
                names.append(member.name)
            # tarfile stops at the end-of-archive blocks; drain the rest so that gzip reaches its
            # trailer and checks the CRC and length of everything it decompressed.
            while tar.fileobj.read(CHUNK):
                pass
    except (tarfile.TarError, EOFError, zlib.error, OSError) as e:
        raise DownloadError(f"{path} is corrupt or truncated ({e}); delete it and run again") from None
    if bad:
        raise DownloadError(f"{path}: refusing to extract an archive with unsafe members: "
                            + "; ".join(bad[:10]) + ("" if len(bad) <= 10 else f"; and {len(bad) - 10} more"))
    if not names:
        raise DownloadError(f"{path} is an empty archive")
    return hexdigest, names


def safe_extract(archive: str | Path, target: str | Path) -> Path:
    """Extract a verified archive into ``target`` (which must not exist yet), via a staging folder.

    A single top-level folder in the archive becomes ``target`` itself (facades.tar.gz holds facades/).
    """
    archive, target = Path(archive), Path(target)
    staging = target.with_name(f".{target.name}.extracting")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = []
            for member in tar:
                problem = _member_problem(member)
                if problem:  # verify_archive ran first; this is the second line of defence
                    raise DownloadError(f"{archive}: refusing member {member.name} ({problem})")
                members.append(member)
            # The 'data' filter (Python 3.10.12+, 3.11.4+) also refuses anything outside the staging
            # folder and drops odd permission bits; older patch releases rely on the checks above.
            extra = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            tar.extractall(staging, members=members, **extra)
        top = [p for p in staging.iterdir()]
        source = top[0] if len(top) == 1 and top[0].is_dir() else staging
        source.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def download(name: str, out: str | Path = "datasets", *, base_url: str = BASE_URL,
             sha256: Optional[str] = None, keep_archive: bool = False, progress: bool = False,
             timeout: float = 60.0) -> dict:
    """Download and extract dataset ``name`` into ``out/name``; returns {"path", "sha256", "members"}."""
    if name not in DATASETS:
        raise DownloadError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    out = Path(out)
    target = out / name
    if target.exists():
        raise DownloadError(f"{target} already exists; delete it to download {name} again")
    url = f"{base_url.rstrip('/')}/{name}.tar.gz"
    archive = fetch(url, out / f"{name}.tar.gz", progress=progress, timeout=timeout)
    try:
        digest, names = verify_archive(archive, sha256)
    except DownloadError:
        # A complete but bad archive cannot be resumed into a good one: remove it so a rerun refetches.
        archive.unlink(missing_ok=True)
        raise
    safe_extract(archive, target)
    if not keep_archive:
        archive.unlink()
    log.info("%s: %d members extracted to %s (sha256 %s)", name, len(names), target, digest)
    return {"path": str(target), "sha256": digest, "members": len(names)}
