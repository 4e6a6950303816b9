import pytest

from benchmarks.image_pack import pack, unpack
from tests.fakedata import make_image_folder


def files_under(folder):
    return sorted(p.relative_to(folder) for p in folder.rglob("*") if p.is_file())


def test_unpacking_restores_every_image_byte_for_byte(tmp_path):
    source = make_image_folder(tmp_path / "images")
    images = files_under(source)
    (source / ".cnnlab_cache").mkdir()
    (source / ".cnnlab_cache" / "train-3x24.pt").write_bytes(b"decoded images")  # not data: left out

    assert pack(source, tmp_path / "images.zpack") == len(images) == 66
    unpack(tmp_path / "images.zpack", tmp_path / "copy")

    assert files_under(tmp_path / "copy") == images
    assert all((tmp_path / "copy" / f).read_bytes() == (source / f).read_bytes() for f in images)


def test_unpacking_something_else_says_what_it_needs(tmp_path):
    (tmp_path / "x.zpack").write_bytes(b"not a pack")
    with pytest.raises(SystemExit, match="not an image pack"):
        unpack(tmp_path / "x.zpack", tmp_path / "out")
