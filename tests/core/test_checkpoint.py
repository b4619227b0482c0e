import pickle

import pytest
import torch

from styleengine.core.checkpoint import MODEL_FORMAT, load_checkpoint, save_model
from styleengine.core.errors import StyleEngineError
from styleengine.core.network import PRESETS, TransformerNet

from ..conftest import make_tiny_model


def test_round_trip_keeps_weights_and_metadata(tmp_path):
    model = make_tiny_model(seed=3)
    path = save_model(tmp_path / "m.pt", model, style={"name": "tiny", "image_sha256": "ab"}, loss_net="random",
                      train_config={"steps": 1})
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == MODEL_FORMAT and raw["arch"]["widths"] == [4, 8, 16]
    ckpt = load_checkpoint(path)
    assert ckpt.style_name == "tiny" and ckpt.train_config == {"steps": 1} and len(ckpt.sha256) == 64
    x = torch.rand(1, 3, 20, 24) * 255
    with torch.no_grad():
        assert torch.equal(ckpt.build_model()(x), model(x))


def test_half_weights_load_as_float(tmp_path):
    model = make_tiny_model(seed=1)
    ckpt = load_checkpoint(save_model(tmp_path / "h.pt", model, half=True))
    assert all(v.dtype == torch.float16 for v in ckpt.state_dict.values() if v.is_floating_point())
    x = torch.rand(1, 3, 16, 16) * 255
    with torch.no_grad():
        assert (ckpt.build_model()(x) - model(x)).abs().max() < 2.0


def test_pytorch_examples_state_dict_with_stale_running_stats(tmp_path):
    model = TransformerNet(PRESETS["johnson"])
    state = model.state_dict()
    state["in1.running_mean"] = torch.zeros(32)  # pre-0.4 checkpoints carry these
    state["in1.running_var"] = torch.ones(32)
    torch.save(state, tmp_path / "candy.pth")
    ckpt = load_checkpoint(tmp_path / "candy.pth")
    assert ckpt.source_format == "pytorch-examples" and ckpt.arch.preset == "johnson" and ckpt.style_name == "candy"
    assert "in1.running_mean" not in ckpt.state_dict


def test_refuses_arbitrary_unpickling_without_running_it(tmp_path):
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    with open(tmp_path / "evil.pt", "wb") as f:
        pickle.dump({"format": MODEL_FORMAT, "x": Evil()}, f)
    torch.save({"m": torch.nn.Linear(2, 2)}, tmp_path / "module.pt")
    for name in ("evil.pt", "module.pt"):
        with pytest.raises(StyleEngineError) as e:
            load_checkpoint(tmp_path / name)
        assert "\n" not in str(e.value)
    assert not marker.exists()


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", b"PK\x03\x04truncated", b"hello\nworld\n"])
def test_garbage_files_are_one_line_errors(tmp_path, content):
    (tmp_path / "bad.pt").write_bytes(content)
    with pytest.raises(StyleEngineError, match="not a readable checkpoint"):
        load_checkpoint(tmp_path / "bad.pt")


def test_truncated_checkpoint(tmp_path):
    good = save_model(tmp_path / "g.pt", make_tiny_model())
    data = good.read_bytes()
    (tmp_path / "t.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(StyleEngineError):
        load_checkpoint(tmp_path / "t.pt")


def test_unknown_format_and_missing_file(tmp_path):
    torch.save({"format": "other/9"}, tmp_path / "o.pt")
    with pytest.raises(StyleEngineError, match="unknown checkpoint format 'other/9'"):
        load_checkpoint(tmp_path / "o.pt")
    with pytest.raises(StyleEngineError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")


def test_mismatched_weights(tmp_path):
    model = make_tiny_model()
    path = save_model(tmp_path / "m.pt", model)
    raw = torch.load(path, weights_only=True)
    raw["arch"]["widths"] = [8, 8, 16]
    torch.save(raw, path)
    with pytest.raises(StyleEngineError, match="do not match"):
        load_checkpoint(path)
