"""Downloading into the cache: checked, atomic, and reported; and the utilities under it."""

from __future__ import annotations

import hashlib

import pytest

from minires.data.atomic import atomic_write
from minires.data.cache import minires_cache_dir
from minires.data.cifar10 import load_data
from minires.data.fetch import DownloadError, download

from .cifar_files import write_archive


def _archive_bytes(tmp_path) -> bytes:
    archive = tmp_path / "made" / "cifar-10-python.tar.gz"
    archive.parent.mkdir()
    write_archive(archive, per_batch=2)
    return archive.read_bytes()


def _leftovers(directory):
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


def test_load_data_downloads_checks_and_keeps_the_archive(tmp_path, http_server):
    body = _archive_bytes(tmp_path)
    url = http_server("/cifar-10-python.tar.gz", body)
    cache = tmp_path / "cache"
    md5 = hashlib.md5(body).hexdigest()
    (x_train, _), (x_test, _) = load_data(cache_dir=cache, url=url, md5=md5, progress=False)
    assert len(x_train) == 10 and len(x_test) == 3
    assert _leftovers(cache) == ["cifar-10-python.tar.gz"]
    assert (cache / "cifar-10-python.tar.gz").read_bytes() == body
    # The next call finds it in the cache and does not ask the server again.
    (x_again, _), _ = load_data(cache_dir=cache, url="http://127.0.0.1:9/none", progress=False)
    assert len(x_again) == 10


def test_downloads_into_the_minires_cache_by_default(tmp_path, http_server, monkeypatch):
    monkeypatch.setenv("MINIRES_CACHE", str(tmp_path / "mc"))
    body = _archive_bytes(tmp_path)
    url = http_server("/a.tar.gz", body)
    load_data(url=url, md5=hashlib.md5(body).hexdigest(), progress=False)
    assert _leftovers(tmp_path / "mc") == ["cifar-10-python.tar.gz"]


def test_a_wrong_md5_leaves_no_file(tmp_path, http_server):
    body = _archive_bytes(tmp_path)
    url = http_server("/cifar-10-python.tar.gz", body)
    cache = tmp_path / "cache"
    with pytest.raises(DownloadError, match="md5") as caught:
        load_data(cache_dir=cache, url=url, md5="0" * 32, progress=False)
    assert "0" * 32 in str(caught.value) and hashlib.md5(body).hexdigest() in str(caught.value)
    assert _leftovers(cache) == []


def test_an_interrupted_download_leaves_no_file(tmp_path, http_server):
    url = http_server("/cut", b"x" * 1000, announced=5000)
    with pytest.raises(DownloadError, match="1000 of 5000 bytes"):
        download(url, tmp_path / "d" / "out.bin", md5=None, progress=False)
    assert _leftovers(tmp_path / "d") == []


def test_a_missing_url_is_a_download_error(tmp_path, http_server):
    url = http_server("/exists", b"")
    with pytest.raises(DownloadError, match="404"):
        download(url.replace("/exists", "/missing"), tmp_path / "d" / "out.bin", md5=None,
                 progress=False)
    assert _leftovers(tmp_path / "d") == []


def test_a_failed_download_keeps_an_older_file(tmp_path, http_server):
    target = tmp_path / "d" / "out.bin"
    target.parent.mkdir()
    target.write_bytes(b"old")
    url = http_server("/new", b"new")
    with pytest.raises(DownloadError):
        download(url, target, md5="f" * 32, progress=False)
    assert target.read_bytes() == b"old" and _leftovers(target.parent) == ["out.bin"]


# --- the utilities -------------------------------------------------------------------------

def test_atomic_write_replaces_only_on_success(tmp_path):
    target = tmp_path / "sub" / "file.bin"
    with atomic_write(target) as handle:
        handle.write(b"first")
    assert target.read_bytes() == b"first" and target.stat().st_mode & 0o777 == 0o644
    with pytest.raises(RuntimeError):
        with atomic_write(target) as handle:
            handle.write(b"second, half")
            raise RuntimeError("stop")
    assert target.read_bytes() == b"first" and _leftovers(target.parent) == ["file.bin"]


def test_cache_dir_order(monkeypatch, isolated_home, tmp_path):
    assert minires_cache_dir() == isolated_home / ".cache" / "minires"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert minires_cache_dir() == tmp_path / "xdg" / "minires"
    monkeypatch.setenv("MINIRES_CACHE", str(tmp_path / "mine"))
    assert minires_cache_dir() == tmp_path / "mine"
