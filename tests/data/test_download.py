"""`pix2pix data download` end to end against a real HTTP server on 127.0.0.1 serving archives built
here (good, truncated, corrupt and malicious ones). Nothing leaves the machine."""
import hashlib
import io
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data

from pix2pix.data.download import DownloadError, download, fetch, safe_extract, verify_archive
from pix2pix.data.prepare import inspect_dataset


class Server:
    """Serves ``files`` {name: bytes} with HTTP Range support. ``cut_after`` drops the connection
    after that many body bytes (once per request); ``ranges=False`` ignores Range like some hosts."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.etags: dict[str, str] = {}
        self.requests: list[dict] = []
        self.cut_after = None
        self.ranges = True
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                name = self.path.rsplit("/", 1)[-1]
                server.requests.append({"path": self.path, "range": self.headers.get("Range"),
                                        "if_range": self.headers.get("If-Range")})
                body = server.files.get(name)
                if body is None:
                    self.send_error(404)
                    return
                etag = server.etags.get(name, '"v1"')
                start, status = 0, 200
                rng = self.headers.get("Range")
                if rng and server.ranges and self.headers.get("If-Range", etag) == etag:
                    start = int(rng.split("=")[1].split("-")[0])
                    if start >= len(body):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(body)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    status = 206
                self.send_response(status)
                self.send_header("ETag", etag)
                self.send_header("Content-Length", str(len(body) - start))
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                self.end_headers()
                chunk = body[start:]
                if server.cut_after is not None:
                    chunk = chunk[:server.cut_after]
                    server.cut_after = None
                self.wfile.write(chunk)
                self.wfile.flush()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/datasets"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02},
                                       daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    with Server() as s:
        yield s


def facades_archive(n: int = 6, top: str = "facades") -> bytes:
    """A small facades-like tar.gz: A|B JPEG pairs cut from real photos, in train/ and val/."""
    photo = data.astronaut()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for i in range(n):
            split = "val" if i == n - 1 else "train"
            crop = photo[i * 40:i * 40 + 64, 100:164]
            img = io.BytesIO()
            Image.fromarray(np.concatenate([crop, crop[:, ::-1]], axis=1)).save(img, format="JPEG")
            info = tarfile.TarInfo(f"{top}/{split}/{i + 1}.jpg")
            info.size = len(img.getvalue())
            tar.addfile(info, io.BytesIO(img.getvalue()))
    return buf.getvalue()


def evil_archive(kind: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        good = tarfile.TarInfo("facades/train/1.txt")
        good.size = 2
        tar.addfile(good, io.BytesIO(b"ok"))
        info = tarfile.TarInfo({"dotdot": "facades/../../evil.txt", "absolute": "/tmp/pix2pix-evil.txt",
                                "symlink": "facades/train/link", "hardlink": "facades/train/hard",
                                "device": "facades/train/dev"}[kind])
        if kind == "symlink":
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        elif kind == "hardlink":
            info.type, info.linkname = tarfile.LNKTYPE, "facades/train/1.txt"
        elif kind == "device":
            info.type = tarfile.CHRTYPE
        else:
            info.size = 4
        tar.addfile(info, io.BytesIO(b"evil") if info.isfile() else None)
    return buf.getvalue()


def test_download_verifies_and_extracts_a_usable_dataset(server, tmp_path):
    archive = facades_archive()
    server.files["facades.tar.gz"] = archive
    result = download("facades", tmp_path, base_url=server.url)
    assert result["sha256"] == hashlib.sha256(archive).hexdigest() and result["members"] == 6
    root = tmp_path / "facades"
    assert sorted(p.name for p in root.iterdir()) == ["train", "val"]
    report = inspect_dataset(root, min_size=64)
    assert report["errors"] == [] and report["splits"]["train"]["pairs"] == 5
    assert not (tmp_path / "facades.tar.gz").exists()  # archive removed after extraction
    with pytest.raises(DownloadError, match="already exists"):
        download("facades", tmp_path, base_url=server.url)


def test_interrupted_download_resumes_with_range(server, tmp_path):
    body = facades_archive(12) * 3  # any bytes: fetch does not care what they are
    server.files["x.tar.gz"] = body
    server.cut_after = len(body) // 3
    dest = tmp_path / "x.tar.gz"
    with pytest.raises(DownloadError, match=r"at [\d,]+ of [\d,]+ bytes.*run the same command again"):
        fetch(f"{server.url}/x.tar.gz", dest)
    part = tmp_path / "x.tar.gz.part"
    assert part.stat().st_size == len(body) // 3 and not dest.exists()
    fetch(f"{server.url}/x.tar.gz", dest)
    assert dest.read_bytes() == body and not part.exists()
    assert server.requests[-1]["range"] == f"bytes={len(body) // 3}-" and server.requests[-1]["if_range"] == '"v1"'


def test_changed_file_or_no_range_support_restarts_from_zero(server, tmp_path):
    old, new = b"a" * 5000, b"b" * 7000
    server.files["y.tar.gz"] = old
    server.cut_after = 2000
    with pytest.raises(DownloadError):
        fetch(f"{server.url}/y.tar.gz", tmp_path / "y.tar.gz")
    server.files["y.tar.gz"], server.etags["y.tar.gz"] = new, '"v2"'  # the file changed on the server
    fetch(f"{server.url}/y.tar.gz", tmp_path / "y.tar.gz")
    assert (tmp_path / "y.tar.gz").read_bytes() == new  # not 2000 a's spliced onto b's
    server.ranges = False
    server.cut_after = 1000
    with pytest.raises(DownloadError):
        fetch(f"{server.url}/y.tar.gz", tmp_path / "z.tar.gz")
    fetch(f"{server.url}/y.tar.gz", tmp_path / "z.tar.gz")
    assert (tmp_path / "z.tar.gz").read_bytes() == new


def test_complete_part_is_finished_without_refetching(server, tmp_path):
    body = b"c" * 3000
    server.files["w.tar.gz"] = body
    server.cut_after = 3000 - 1
    with pytest.raises(DownloadError):
        fetch(f"{server.url}/w.tar.gz", tmp_path / "w.tar.gz")
    (tmp_path / "w.tar.gz.part").write_bytes(body)  # the last byte arrived after all
    fetch(f"{server.url}/w.tar.gz", tmp_path / "w.tar.gz")
    assert (tmp_path / "w.tar.gz").read_bytes() == body


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink", "hardlink", "device"])
def test_malicious_archives_are_refused_before_anything_is_written(server, tmp_path, kind):
    server.files["facades.tar.gz"] = evil_archive(kind)
    out = tmp_path / "datasets"
    with pytest.raises(DownloadError, match=r"refusing to extract an archive with unsafe members: facades"
                                            r"|refusing to extract an archive with unsafe members: /tmp"):
        download("facades", out, base_url=server.url)
    assert not (out / "facades").exists() and not (tmp_path / "evil.txt").exists()
    assert not Path("/tmp/pix2pix-evil.txt").exists()
    assert not (out / "facades.tar.gz").exists()  # a bad archive is not kept to be 'resumed'
    with pytest.raises(DownloadError, match="refusing"):  # and extraction alone refuses it too
        (tmp_path / "e.tar.gz").write_bytes(evil_archive(kind))
        safe_extract(tmp_path / "e.tar.gz", tmp_path / "target")
    assert not (tmp_path / "target").exists()


def test_corrupt_and_truncated_archives_and_checksums(server, tmp_path):
    good = facades_archive()
    bad = bytearray(good)
    bad[len(bad) // 2] ^= 0xFF
    for name, body in (("flipped.tar.gz", bytes(bad)), ("short.tar.gz", good[: len(good) - 40])):
        (tmp_path / name).write_bytes(body)
        with pytest.raises(DownloadError, match=rf"{name} is corrupt or truncated"):
            verify_archive(tmp_path / name)
    (tmp_path / "g.tar.gz").write_bytes(good)
    digest, names = verify_archive(tmp_path / "g.tar.gz", hashlib.sha256(good).hexdigest())
    assert len(names) == 6
    with pytest.raises(DownloadError, match="SHA-256 is .* expected 00"):
        verify_archive(tmp_path / "g.tar.gz", "00" * 32)
    server.files["maps.tar.gz"] = bytes(bad)
    with pytest.raises(DownloadError, match="corrupt or truncated"):
        download("maps", tmp_path / "d", base_url=server.url)
    assert not (tmp_path / "d" / "maps").exists() and not (tmp_path / "d" / "maps.tar.gz").exists()


def test_unknown_name_missing_file_and_unreachable_host(server, tmp_path):
    with pytest.raises(DownloadError, match="unknown dataset 'shoes'; choose one of facades"):
        download("shoes", tmp_path, base_url=server.url)
    with pytest.raises(DownloadError, match=r"night2day\.tar\.gz: HTTP 404 .*--base-url"):
        download("night2day", tmp_path, base_url=server.url)
    with pytest.raises(DownloadError, match="cannot reach http://127.0.0.1:9/"):
        download("facades", tmp_path, base_url="http://127.0.0.1:9", timeout=5)


def test_download_command_line(server, tmp_path):
    from pix2pix.cli import main

    server.files["cityscapes.tar.gz"] = facades_archive(top="cityscapes")
    assert main(["data", "download", "cityscapes", "--out", str(tmp_path), "--base-url", server.url,
                 "--no-progress", "--keep-archive"]) == 0
    assert (tmp_path / "cityscapes" / "train" / "1.jpg").is_file() and (tmp_path / "cityscapes.tar.gz").is_file()
    assert main(["data", "download", "edges2shoes", "--out", str(tmp_path), "--base-url", server.url,
                 "--no-progress"]) == 2
