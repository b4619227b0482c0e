import shutil

import pytest
import torch

from styleengine.core.errors import StyleEngineError
from styleengine.train.data import Schedule, load_style_image, make_loader, scan_images


@pytest.fixture()
def photo_tree(tmp_path, assets):
    root = tmp_path / "photos"
    (root / "a" / "deeper").mkdir(parents=True)
    (root / "b").mkdir()
    (root / ".hidden").mkdir()
    src = sorted((assets / "train").glob("photo_*.jpg"))
    shutil.copy(src[0], root / "top.jpg")
    shutil.copy(src[1], root / "a" / "one.JPG")
    shutil.copy(src[2], root / "a" / "deeper" / "two.jpg")
    shutil.copy(src[3], root / "b" / "three.jpeg")
    shutil.copy(src[0], root / ".hidden" / "ignored.jpg")
    (root / "b" / "notes.txt").write_text("not an image")
    (root / "b" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated garbage")
    (root / "a" / "tiny.png").write_bytes(b"")
    return root


def test_scan_is_recursive_and_skips_and_counts_bad_files(photo_tree):
    scan = scan_images(photo_tree, min_side=8)
    names = sorted(p.name for p in scan.files)
    assert names == ["one.JPG", "three.jpeg", "top.jpg", "two.jpg"]
    skipped = {p.name: why for p, why in scan.skipped}
    assert set(skipped) == {"notes.txt", "broken.jpg", "tiny.png"}
    assert skipped["notes.txt"] == "not an image file" and "unreadable" in skipped["broken.jpg"]


def test_missing_empty_and_imageless_folders_are_one_line_errors(tmp_path):
    with pytest.raises(StyleEngineError, match="data folder not found"):
        scan_images(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(StyleEngineError, match="no usable images"):
        scan_images(tmp_path / "empty")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "x.jpg").write_bytes(b"nope")
    with pytest.raises(StyleEngineError, match=r"1 other files skipped"):
        scan_images(tmp_path / "junk")
    (tmp_path / "file.jpg").write_bytes(b"")
    with pytest.raises(StyleEngineError, match="not a folder"):
        scan_images(tmp_path / "file.jpg")


def test_schedule_epochs_are_permutations_and_depend_only_on_seed_and_index():
    s = Schedule(7, seed=5)
    epoch0 = [s.item(i)[0] for i in range(7)]
    epoch1 = [s.item(i)[0] for i in range(7, 14)]
    assert sorted(epoch0) == sorted(epoch1) == list(range(7)) and epoch0 != epoch1
    # Random access (as after a resume) gives the same items as a sequential pass.
    fresh = Schedule(7, seed=5)
    assert fresh.item(12) == s.item(12) and fresh.item(3) == Schedule(7, seed=5).item(3)
    assert [Schedule(7, seed=6).item(i)[0] for i in range(7)] != epoch0


def test_loader_crops_flips_and_resumes_mid_stream(photo_tree):
    files = scan_images(photo_tree).files
    full, _ = make_loader(files, image_size=32, batch_size=2, seed=1, start_step=0, total_steps=5)
    batches = list(full)
    assert len(batches) == 5 and all(b.shape == (2, 3, 32, 32) and b.dtype == torch.float32 for b in batches)
    assert 0 <= float(batches[0].min()) and float(batches[0].max()) <= 255
    tail, _ = make_loader(files, image_size=32, batch_size=2, seed=1, start_step=3, total_steps=5)
    assert all(torch.equal(a, b) for a, b in zip(batches[3:], tail))
    # Two processes of world size 2 together see exactly one process's batch of 4.
    one, _ = make_loader(files, image_size=32, batch_size=4, seed=1, start_step=0, total_steps=2)
    r0, _ = make_loader(files, image_size=32, batch_size=2, seed=1, start_step=0, total_steps=2, rank=0, world_size=2)
    r1, _ = make_loader(files, image_size=32, batch_size=2, seed=1, start_step=0, total_steps=2, rank=1, world_size=2)
    for b, a0, a1 in zip(one, r0, r1):
        assert torch.equal(b, torch.cat([a0, a1]))


def test_file_that_fails_to_decode_later_is_replaced_and_counted(photo_tree):
    files = scan_images(photo_tree).files
    files[0].write_bytes(files[0].read_bytes()[:40])  # truncated after the header scan
    loader, dataset = make_loader(files, image_size=16, batch_size=4, seed=0, start_step=0, total_steps=1)
    (batch,) = list(loader)
    assert batch.shape == (4, 3, 16, 16) and dataset.decode_failures == {0}


def test_style_image_long_side_and_errors(assets, tmp_path):
    img = load_style_image(assets / "train" / "style_starry_night.jpg", 40)
    assert img.shape[0] == 1 and max(img.shape[-2:]) == 40
    assert load_style_image(assets / "train" / "style_starry_night.jpg", None).shape[-1] == 80
    with pytest.raises(StyleEngineError, match="style image not found"):
        load_style_image(tmp_path / "x.jpg", 64)
    (tmp_path / "bad.jpg").write_text("text")
    with pytest.raises(StyleEngineError, match="not a readable image"):
        load_style_image(tmp_path / "bad.jpg", 64)


def test_photo_size_crops_parts_of_the_photo_at_that_resolution():
    import random

    import numpy as np
    from PIL import Image

    from styleengine.train.data import random_crop

    # A 400x200 photo whose columns count 0..399: a crop's column values tell the scale it was taken at.
    ramp = np.tile(np.linspace(0, 255, 400, dtype=np.float64), (200, 1))
    im = Image.fromarray(np.stack([ramp] * 3, -1).round().astype(np.uint8))
    spans = {}
    for photo_size in (None, 160):
        crops = [np.asarray(random_crop(im, 32, random.Random(i), photo_size=photo_size))[..., 0].astype(float)
                 for i in range(8)]
        assert all(c.shape == (32, 32) for c in crops)
        spans[photo_size] = np.mean([abs(c[:, -1] - c[:, 0]).mean() for c in crops])
    # Whole photo at a 32-40 px short side: a crop spans ~40% of the ramp; at 160-200 px, ~8-10%.
    assert spans[None] > 3.5 * spans[160]
