"""`styleengine train STYLE_IMAGE DATA_DIR -o vangogh.pt`: options mapped onto train.trainer.TrainConfig."""

from __future__ import annotations

import os
from pathlib import Path
from typing import List, Optional

import typer

from .common import flag, handle_errors, print_json


def _layers(value: Optional[str]) -> Optional[tuple[str, ...]]:
    return tuple(v.strip() for v in value.split(",") if v.strip()) if value else None


def register(app: typer.Typer) -> None:
    @app.command("train")
    @handle_errors
    def train(
        style_image: Path = typer.Argument(..., help="The style image (a painting)."),
        data_dir: Path = typer.Argument(..., help="Folder of training photos (scanned recursively)."),
        output: Path = typer.Option(..., "-o", "--output", help="Model file to write, e.g. vangogh.pt."),
        preset: str = typer.Option("johnson", help="Network preset: johnson (paper) or fast (~0.42M params)."),
        loss_net: str = typer.Option("vgg16", help="Loss network: vgg16 (paper; downloads weights once) or "
                                                   "efficientnet-lite0 (offline)."),
        loss_weights: Optional[Path] = typer.Option(None, help="Loss network weights file (e.g. vgg16-397923af.pth)."),
        random_loss_net: bool = flag("Random loss-network weights (tests only; useless styles).", "--random-loss-net"),
        steps: Optional[int] = typer.Option(None, help="Training steps (default: 2 epochs, at least 2000)."),
        epochs: Optional[float] = typer.Option(None, help="Epochs over the photos (instead of --steps)."),
        batch_size: int = typer.Option(4, help="Batch size (per process under torchrun)."),
        image_size: int = typer.Option(256, help="Square training crop size in pixels."),
        photo_size: Optional[int] = typer.Option(None, help="Crop from photos resized to this short side, the size "
                                                            "you will stylize at (default: whole photos at the "
                                                            "crop size)."),
        style_size: Optional[int] = typer.Option(768, help="Long side the style image is resized to."),
        lr: float = typer.Option(1e-3, help="Adam learning rate."),
        content_weight: Optional[float] = typer.Option(None, help="Content loss weight (default per loss net)."),
        style_weight: Optional[float] = typer.Option(None, help="Style loss weight (default per loss net)."),
        tv_weight: Optional[float] = typer.Option(None, help="Total-variation weight (default per loss net)."),
        content_layers: Optional[str] = typer.Option(None, help="Comma-separated content taps."),
        style_layers: Optional[str] = typer.Option(None, help="Comma-separated style taps."),
        swag_temperature: Optional[float] = typer.Option(None, help="SWAG softmax smoothing of the loss features "
                                                                    "(0 = off; default per loss net)."),
        loss_jitter: Optional[int] = typer.Option(None, help="Shift output and photo by a random 0..N-1 px before "
                                                             "the loss network (against grid textures; default per loss net)."),
        stability_weight: float = typer.Option(0.0, help="Temporal-stability regularizer weight (video; 0 = off)."),
        shift_weight: Optional[float] = typer.Option(None, help="Shift-equivariance loss weight: penalizes output "
                                                                "that depends on position mod 4, a fixed 4-px grid "
                                                                "(0 = off; default per loss net)."),
        peak_weight: Optional[float] = typer.Option(None, help="Spectral-peak loss weight: penalizes output "
                                                               "texture that repeats across the image more than "
                                                               "the photo's (0 = off; default per loss net)."),
        spike_weight: float = typer.Option(0.0, help="Instance-norm spike loss weight: penalizes the "
                                                     "heavy-tailed channels a network makes blob artefacts with "
                                                     "(0 = off)."),
        plain_steps: Optional[int] = typer.Option(None, help="Train this many steps with the plain perceptual "
                                                             "loss before loss jitter, the shift loss and the peak "
                                                             "loss switch on (default per loss net)."),
        plain_style_weight: Optional[float] = typer.Option(None, help="Style loss weight during the plain steps "
                                                                      "(default per loss net; none: --style-weight)."),
        seed: int = typer.Option(0, help="Random seed (init, data order, crops)."),
        init_from: Optional[Path] = typer.Option(None, help="Start from this model's weights (fine-tune another "
                                                            "style of the same preset)."),
        average_from: Optional[int] = typer.Option(None, help="Save the mean of the weights from this step on "
                                                              "(every --average-every steps and the last): one "
                                                              "step's look is partly noise (default: the last "
                                                              "step's weights)."),
        average_every: int = typer.Option(100, help="Steps between the weights --average-from averages."),
        margin: Optional[int] = typer.Option(None, help="Pixels of reflected input the saved model adds around "
                                                        "every image and crops from its output, keeping the "
                                                        "border band trained networks paint out of the picture "
                                                        "(a multiple of 4; default 8; 0 = none)."),
        checkpoint_every: int = typer.Option(500, help="Write a resumable train state every N steps (0 = off)."),
        preview_every: Optional[int] = typer.Option(None, help="Add a row to the preview grid every N steps "
                                                               "(default: --checkpoint-every; 0 = off)."),
        preview_images: Optional[List[Path]] = typer.Option(None, "--preview-image", help="Photo for the preview grid (repeat; default: the first 3 photos)."),
        log: Optional[Path] = typer.Option(None, help="JSONL loss log (default: <output>.log.jsonl)."),
        log_every: int = typer.Option(10, help="Log (and print a progress line) every N steps."),
        resume: bool = flag("Continue from <output>.train-state.pt exactly where it stopped.", "--resume"),
        overwrite: bool = flag("Replace an existing output and train state.", "--overwrite"),
        device: str = typer.Option("auto", help="auto, cpu, cuda or cuda:N."),
        amp: str = typer.Option("auto", help="CUDA mixed precision: auto, bf16, fp16 or off."),
        channels_last: Optional[bool] = typer.Option(None, "--channels-last/--no-channels-last",
                                                     help="channels_last memory format (default: on for CUDA)."),
        workers: Optional[int] = typer.Option(None, help="Data loading processes (default: 0 on CPU, up to 8 on CUDA)."),
        style_name: Optional[str] = typer.Option(None, help="Style name stored in the model (default: file stem)."),
        attribution: Optional[str] = typer.Option(None, help="Artwork attribution stored in the model."),
        json: bool = flag("Print the result as JSON.", "--json"),
    ) -> None:
        """Train a transformation network for STYLE_IMAGE on the photos in DATA_DIR (Johnson et al. 2016)."""
        from styleengine.train.trainer import TrainConfig
        from styleengine.train.trainer import train as run

        options = {k: v for k, v in locals().items() if k not in ("resume", "overwrite", "json", "run", "TrainConfig")}
        options.update(content_layers=_layers(content_layers), style_layers=_layers(style_layers),
                       preview_images=tuple(preview_images or ()))
        r = run(TrainConfig.from_options(**options), resume=resume, overwrite=overwrite)
        if os.environ.get("RANK", "0") != "0":  # under torchrun only rank 0 reports
            return
        if json:
            print_json({"output": str(r.path), "steps": r.steps, "train_state": str(r.state_path),
                        "log": str(r.log_path), "losses": r.final_losses, "skipped_files": r.skipped_files,
                        "previews": str(r.previews) if r.previews else None,
                        "loss_plot": str(r.loss_plot) if r.loss_plot else None, "seconds": round(r.seconds, 1)})
        else:
            print(r.path)
