import shutil
import subprocess
import sys

import pytest
import torch

from styleengine.core.checkpoint import load_checkpoint
from styleengine.train.trainer import TrainConfig, train

# The recipe before the study (style weight 0.5, no loss jitter, no shift loss): with those, 2 ranks x 1 photo
# match 1 process x 2 photos to 0.1% after 3 steps. With style weight 2 or the loss jitter they drift apart by
# 5-17% of what training changed (not yet explained: Adam on near-zero gradients, or a real difference).
PINNED = ["--style-weight", "0.5", "--loss-jitter", "0", "--shift-weight", "0", "--peak-weight", "0",
          "--plain-steps", "0"]
PINNED_CFG = {"style_weight": 0.5, "loss_jitter": 0, "shift_weight": 0.0, "peak_weight": 0.0, "plain_steps": 0}


@pytest.mark.slow
def test_torchrun_two_cpu_processes_with_gloo_match_one_process_with_the_global_batch(tmp_path, assets):
    pytest.importorskip("torch.distributed")
    if not torch.distributed.is_gloo_available():
        pytest.skip("torch built without gloo")
    photos = tmp_path / "photos"
    photos.mkdir()
    for p in sorted((assets / "train").glob("photo_*.jpg")):
        shutil.copy(p, photos / p.name)
    style = assets / "train" / "style_starry_night.jpg"
    common = ["--preset", "fast", "--loss-net", "efficientnet-lite0", "--image-size", "32", "--style-size", "48",
              "--steps", "3", "--checkpoint-every", "0", "--seed", "7", *PINNED]
    out = tmp_path / "ddp.pt"
    res = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          "-m", "styleengine", "train", str(style), str(photos), "-o", str(out),
                          "--batch-size", "1", "--device", "cpu", *common],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.strip() == str(out)  # only rank 0 reports
    ddp = load_checkpoint(out)
    assert ddp.train_config["world_size"] == 2 and ddp.train_config["global_batch"] == 2
    single = train(TrainConfig(style, photos, tmp_path / "one.pt", preset="fast", loss_net="efficientnet-lite0",
                               image_size=32, style_size=48, steps=3, checkpoint_every=0, seed=7, batch_size=2,
                               device="cpu", **PINNED_CFG))
    ref = load_checkpoint(single.path)
    # Averaged gradients over 2x1 samples == gradients of the mean over 2 samples. Compared through the
    # outputs: conv biases feeding InstanceNorm have zero true gradient, so Adam moves them by +-lr on float
    # noise in either run, without effect on the output.
    x = torch.rand(1, 3, 40, 40, generator=torch.Generator().manual_seed(0)) * 255
    init = load_checkpoint(train(TrainConfig(style, photos, tmp_path / "short.pt", preset="fast",
                                             loss_net="efficientnet-lite0", image_size=32, style_size=48, steps=1,
                                             checkpoint_every=0, seed=7, batch_size=2, device="cpu",
                                             **PINNED_CFG)).path)
    with torch.no_grad():
        a, b, c = ddp.build_model()(x), ref.build_model()(x), init.build_model()(x)
    # The runs really differ from a barely trained network (the check has teeth)...
    trained = (c - b).abs().max()
    assert trained > 0.5
    # ...and DDP lands within float noise of one process: Adam turns reduction-order noise on near-zero
    # gradients into +-lr steps, so the bound is relative to what training itself changed. That noise depends on
    # the CPU's kernels: under 0.1% on an AVX2 EPYC, 0.12% on an AVX-512 Xeon; 0.5% still sits far below the
    # 5-17% drift of the unexplained case above.
    assert (a - b).abs().max() < 5e-3 * trained, ((a - b).abs().max(), trained)
