from __future__ import annotations

import dataclasses
import functools
import hashlib
import http.server
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from hourglass.data import (
    DatasetInfo,
    RemoteFile,
    default_cache_dir,
    download_file,
    fetch_files,
    find_files,
    get_dataset,
    list_datasets,
    load_fashion_mnist,
    load_mnist,
    registry,
    search_paths,
    write_idx,
)
from hourglass.exceptions import ChecksumError, DatasetError, InvalidInputError

TEST_FILES = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def make_split(folder: Path, marker: int, n: int = 5, prefix: str = "t10k") -> tuple[Path, Path]:
    """Write tiny MNIST-like IDX files whose labels all equal ``marker``."""
    rng = np.random.default_rng(marker)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = np.full(n, marker, dtype=np.uint8)
    return (
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", images),
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", labels),
    )


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def patch_dataset(monkeypatch: pytest.MonkeyPatch, name: str, **changes: object) -> DatasetInfo:
    info = dataclasses.replace(registry.DATASETS[name], **changes)  # type: ignore[arg-type]
    monkeypatch.setitem(registry.DATASETS, name, info)
    return info


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No test sees the real environment, cache, system folders or mirrors."""
    monkeypatch.delenv("HOURGLASS_DATA", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOURGLASS_CACHE", str(tmp_path / "cache"))
    for name in list(registry.DATASETS):
        patch_dataset(monkeypatch, name, mirrors=(), system_dirs=(tmp_path / "system" / name,))
    return tmp_path


# -- the registry ----------------------------------------------------------------------------


def test_list_and_get() -> None:
    assert list_datasets() == ["fashion-mnist", "mnist"]
    assert get_dataset("Fashion_MNIST").name == "fashion-mnist"
    assert get_dataset(" mnist ").title == "MNIST"


def test_unknown_dataset_lists_the_known_ones() -> None:
    with pytest.raises(
        DatasetError,
        match=r"Unknown data set 'cifar'\. Expected one of \['fashion-mnist', 'mnist'\]",
    ):
        get_dataset("cifar")


def test_registry_lists_mirrors_and_checksums_for_every_file() -> None:
    fashion = registry.DATASETS["fashion-mnist"]
    assert fashion.splits.keys() == {"train", "test"}
    for split in fashion.splits.values():
        assert len(split) == 2
        for file in split:
            assert len(file.sha256) == 64
            int(file.sha256, 16)


def test_shipped_registry_points_at_the_official_mirrors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.undo()  # look at the registry as shipped, not as the fixture patched it
    mnist, fashion = registry.DATASETS["mnist"], registry.DATASETS["fashion-mnist"]
    assert mnist.mirrors == (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    )
    assert fashion.mirrors == ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",)
    assert fashion.system_dirs == (Path("/usr/share/datasets/fashion-mnist"),)
    assert mnist.system_dirs == ()
    assert mnist.splits["train"][0] == RemoteFile(
        "train-images-idx3-ubyte.gz",
        "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    )


def test_default_cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert default_cache_dir() == tmp_path / "cache"
    monkeypatch.delenv("HOURGLASS_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "hourglass"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "hourglass"


def test_search_paths_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOURGLASS_DATA", str(tmp_path / "env"))
    assert search_paths("fashion-mnist", data_dir=tmp_path / "explicit") == [
        tmp_path / "explicit",
        tmp_path / "explicit" / "fashion-mnist",
        tmp_path / "env" / "fashion-mnist",
        tmp_path / "cache" / "fashion-mnist",
        tmp_path / "system" / "fashion-mnist",
    ]
    monkeypatch.delenv("HOURGLASS_DATA")
    assert search_paths("mnist") == [tmp_path / "cache" / "mnist", tmp_path / "system" / "mnist"]


# -- local lookup ------------------------------------------------------------------------------

LOCATIONS = [
    "data_dir",
    "data_dir/fashion-mnist",
    "env/fashion-mnist",
    "cache/fashion-mnist",
    "system/fashion-mnist",
]


@pytest.mark.parametrize("first", range(len(LOCATIONS)))
def test_lookup_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, first: int) -> None:
    # Every location from `first` on holds a copy whose labels equal the location's index:
    # the copy loaded must be the one at `first`.
    monkeypatch.setenv("HOURGLASS_DATA", str(tmp_path / "env"))
    for index, location in enumerate(LOCATIONS):
        if index >= first:
            make_split(tmp_path / location, marker=index)

    images, labels = load_fashion_mnist("test", data_dir=tmp_path / "data_dir", download=False)

    assert images.shape == (5, 28, 28)
    assert images.dtype == labels.dtype == np.uint8
    np.testing.assert_array_equal(labels, np.full(5, first, dtype=np.uint8))


def test_a_folder_holding_only_some_files_is_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOURGLASS_DATA", str(tmp_path / "env"))
    images, _ = make_split(tmp_path / "env" / "mnist", marker=1)
    make_split(tmp_path / "cache" / "mnist", marker=2)
    images.unlink()

    _, labels = load_mnist("test", download=False)
    assert labels[0] == 2  # both files came from the cache, none from the incomplete folder


def test_find_files(tmp_path: Path) -> None:
    assert find_files("mnist", "test", data_dir=tmp_path / "mine") is None
    expected = make_split(tmp_path / "mine", marker=0)
    assert find_files("mnist", "test", data_dir=tmp_path / "mine") == expected


def test_train_split_uses_train_files(tmp_path: Path) -> None:
    make_split(tmp_path / "mine", marker=3, n=7, prefix="train")
    images, labels = load_mnist("train", data_dir=tmp_path / "mine", download=False)
    assert images.shape == (7, 28, 28)
    assert labels.tolist() == [3] * 7


def test_unknown_split() -> None:
    with pytest.raises(
        InvalidInputError,
        match=r"MNIST has no split 'validation'\. Expected one of \['test', 'train'\]",
    ):
        load_mnist("validation", download=False)  # type: ignore[arg-type]


def test_offline_and_not_found_lists_every_place_and_the_fixes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOURGLASS_DATA", str(tmp_path / "env"))
    (tmp_path / "env" / "fashion-mnist").mkdir(parents=True)
    make_split(tmp_path / "mine", marker=0)
    (tmp_path / "mine" / TEST_FILES[1]).unlink()

    with pytest.raises(DatasetError) as caught:
        load_fashion_mnist("test", data_dir=tmp_path / "mine", download=False)

    message = str(caught.value)
    assert not isinstance(caught.value, ChecksumError)
    assert message.startswith("Could not find the Fashion-MNIST 'test' split")
    for line in [
        f"{tmp_path / 'mine'} (data_dir): missing t10k-labels-idx1-ubyte.gz",
        f"{tmp_path / 'mine' / 'fashion-mnist'} (data_dir): does not exist",
        f"{tmp_path / 'env' / 'fashion-mnist'} ($HOURGLASS_DATA): missing {', '.join(TEST_FILES)}",
        f"{tmp_path / 'cache' / 'fashion-mnist'} (cache): does not exist",
        f"{tmp_path / 'system' / 'fashion-mnist'} (system folder): does not exist",
        "Downloading is turned off (download=False)",
        "pass data_dir=",
        "set HOURGLASS_DATA=",
        "connect to the network",
    ]:
        assert line in message
    assert not (tmp_path / "cache").exists()


def test_offline_message_says_when_nothing_was_configured() -> None:
    with pytest.raises(DatasetError, match=r"data_dir: not given\n  - \$HOURGLASS_DATA: not set\n"):
        load_mnist("test", download=False)


# -- downloading --------------------------------------------------------------------------------


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def mirror(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A local HTTP server serving the folder it returns, and its base URL."""
    root = tmp_path / "www"
    root.mkdir()
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(root))
    )
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", root
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def point_mnist_at(
    monkeypatch: pytest.MonkeyPatch, mirrors: tuple[str, ...], files: tuple[Path, Path]
) -> None:
    """Make the registry's MNIST test split use ``mirrors`` and the digests of ``files``."""
    test = tuple(RemoteFile(path.name, sha256(path)) for path in files)
    splits = {**registry.DATASETS["mnist"].splits, "test": test}
    patch_dataset(monkeypatch, "mnist", mirrors=mirrors, splits=splits)


def cache_content(tmp_path: Path) -> list[str]:
    cache = tmp_path / "cache"
    return sorted(str(p.relative_to(cache)) for p in cache.rglob("*")) if cache.exists() else []


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_download_verifies_and_caches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mirror: tuple[str, Path]
) -> None:
    url, root = mirror
    served = make_split(root, marker=4)
    point_mnist_at(monkeypatch, (url,), served)

    images, labels = load_mnist("test", progress=True)

    assert images.shape == (5, 28, 28)
    assert labels.tolist() == [4] * 5
    assert cache_content(tmp_path) == ["mnist", *(f"mnist/{name}" for name in TEST_FILES)]
    for path in served:
        assert (tmp_path / "cache" / "mnist" / path.name).read_bytes() == path.read_bytes()
    # Once cached, the files load offline.
    _, again = load_mnist("test", download=False)
    np.testing.assert_array_equal(again, labels)


def test_download_falls_back_to_the_next_mirror(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mirror: tuple[str, Path]
) -> None:
    url, root = mirror
    served = make_split(root / "good", marker=5)
    make_split(root / "corrupt", marker=6)  # same names, other bytes: fails the checksum
    point_mnist_at(monkeypatch, (url + "missing/", url + "corrupt/", url + "good/"), served)

    _, labels = load_mnist("test", progress=False)

    assert labels.tolist() == [5] * 5
    assert cache_content(tmp_path) == ["mnist", *(f"mnist/{name}" for name in TEST_FILES)]


def test_only_missing_files_are_downloaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mirror: tuple[str, Path]
) -> None:
    url, root = mirror
    served = make_split(root, marker=7)
    point_mnist_at(monkeypatch, (url,), served)
    cached_images = tmp_path / "cache" / "mnist" / served[0].name
    cached_images.parent.mkdir(parents=True)
    cached_images.write_bytes(served[0].read_bytes())
    served[0].unlink()  # the server can no longer provide the images

    _, labels = load_mnist("test", progress=False)
    assert labels.tolist() == [7] * 5


def test_checksum_mismatch_leaves_nothing_in_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mirror: tuple[str, Path]
) -> None:
    url, root = mirror
    expected = make_split(tmp_path / "expected", marker=8)
    make_split(root, marker=9)  # what the server actually sends
    point_mnist_at(monkeypatch, (url,), expected)

    with pytest.raises(ChecksumError) as caught:
        load_mnist("test", progress=False)

    message = str(caught.value)
    got = sha256(root / TEST_FILES[0])
    assert f"{url}{TEST_FILES[0]}: SHA-256 {got}, expected {sha256(expected[0])}" in message
    assert "does not match" in message
    assert "Looked in:" in message
    assert cache_content(tmp_path) == ["mnist"]  # the folder only: no partial or temporary files


def test_server_down_gives_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dead = f"http://127.0.0.1:{unused_port()}/"
    point_mnist_at(monkeypatch, (dead,), make_split(tmp_path / "expected", marker=0))

    with pytest.raises(DatasetError) as caught:
        load_mnist("test", progress=False, data_dir=tmp_path / "mine")

    message = str(caught.value)
    assert not isinstance(caught.value, ChecksumError)
    assert f"Could not download {TEST_FILES[0]}. Tried:\n  - {dead}{TEST_FILES[0]}: " in message
    assert "refused" in message.lower()
    assert f"{tmp_path / 'mine'} (data_dir): does not exist" in message
    assert "connect to the network" in message
    assert cache_content(tmp_path) in ([], ["mnist"])


def test_http_error_is_reported_per_url(tmp_path: Path, mirror: tuple[str, Path]) -> None:
    url, _ = mirror
    with pytest.raises(DatasetError, match=r"missing\.gz: HTTP 404"):
        download_file(
            [url + "missing.gz"], tmp_path / "out" / "missing.gz", "0" * 64, progress=False
        )
    assert list((tmp_path / "out").iterdir()) == []


def test_unresponsive_server_times_out(tmp_path: Path) -> None:
    with socket.socket() as listener:  # accepts connections (backlog) but never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/x.gz"
        with pytest.raises(DatasetError, match="timed out"):
            download_file([url], tmp_path / "x.gz", "0" * 64, progress=False, timeout=0.2)
    assert list(tmp_path.iterdir()) == []


def test_download_file_returns_the_destination(tmp_path: Path, mirror: tuple[str, Path]) -> None:
    url, root = mirror
    (root / "blob.bin").write_bytes(b"hello")
    digest = hashlib.sha256(b"hello").hexdigest()

    path = download_file(
        [url + "blob.bin"], tmp_path / "deep" / "er" / "blob.bin", digest.upper(), progress=False
    )

    assert path == tmp_path / "deep" / "er" / "blob.bin"
    assert path.read_bytes() == b"hello"


def test_no_mirrors(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no URL to download it from"):
        fetch_files("mnist", "test")
