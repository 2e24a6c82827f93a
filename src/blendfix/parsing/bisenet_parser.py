"""BiSeNet face parsing with the published ``79999_iter.pth`` weights, as face-parsing.PyTorch's ``test.py``.

Preprocessing: RGB -> uint8 -> PIL ``resize((512, 512), BILINEAR)`` -> [0, 1] -> ImageNet
normalisation. The main output's logits (at 512x512) are resized bilinearly to the input size and
the argmax over the 19 classes is the label map (BiSeNet order, :data:`~.labels.BISENET_CLASSES`).
The checkpoint is never downloaded: a missing file raises
:class:`~blendfix.errors.MissingWeightsError` saying where to put it.
"""

from __future__ import annotations

import os

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..checkpoints import load_checkpoint
from ..device import resolve_device
from ..errors import BlendfixError
from ..nets.bisenet import CHECKPOINT, INPUT_SIZE, BiSeNet, imagenet_normalize


def preprocess(image: np.ndarray, size: int = INPUT_SIZE) -> torch.Tensor:
    """(H, W, 3) float RGB in [0, 1] or uint8 -> (1, 3, size, size) ImageNet-normalised tensor."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) RGB image, got shape {image.shape}")
    if image.dtype != np.uint8:
        image = (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    pil = Image.fromarray(np.ascontiguousarray(image), "RGB")
    if pil.size != (size, size):
        pil = pil.resize((size, size), Image.BILINEAR)
    x = torch.from_numpy(np.asarray(pil, dtype=np.float32) / 255.0).permute(2, 0, 1)[None]
    return imagenet_normalize(x)


class BiSeNetParser:
    """``parse(image) -> (H, W) int64`` label map (BiSeNet order) from the BiSeNet face parser.

    Args:
        checkpoint: registered name (default ``bisenet-face-parsing``, file ``79999_iter.pth``) or a path.
        device: ``auto``, ``cpu``, ``cuda``...
        size: network input size (the published model: 512).
        model: an already-built :class:`~blendfix.nets.bisenet.BiSeNet` (then ``checkpoint`` is ignored).
    """

    name = "bisenet"

    def __init__(self, checkpoint: str | os.PathLike = CHECKPOINT.name, device: str = "auto",
                 size: int = INPUT_SIZE, model: BiSeNet | None = None) -> None:
        if size < 32:
            raise ValueError(f"size must be at least 32, got {size}")
        self.device = resolve_device(device)
        self.size = size
        if model is None:
            state = load_checkpoint(checkpoint)
            if not isinstance(state, dict) or "cp.resnet.conv1.weight" not in state:
                raise BlendfixError(f"{checkpoint}: not a face-parsing BiSeNet state_dict (expected keys such as "
                                    "cp.resnet.conv1.weight, as in 79999_iter.pth)")
            model = BiSeNet(n_classes=state["conv_out.conv_out.weight"].shape[0])
            model.load_state_dict(state, strict=True)
        self.model = model.to(self.device).eval()

    @torch.no_grad()
    def logits(self, image: np.ndarray) -> torch.Tensor:
        """(H, W, 3) image -> (1, n_classes, size, size) float32 logits of the main head."""
        return self.model(preprocess(image, self.size).to(self.device))[0].float()

    def parse(self, image: np.ndarray, source: str | os.PathLike | None = None) -> np.ndarray:
        """(H, W, 3) float RGB in [0, 1] (or uint8) -> (H, W) int64 label map. ``source`` is unused."""
        out = self.logits(image)
        h, w = np.asarray(image).shape[:2]
        if out.shape[2:] != (h, w):
            out = F.interpolate(out, size=(h, w), mode="bilinear", align_corners=False)
        return out.argmax(dim=1)[0].cpu().numpy().astype(np.int64)
