"""The catalog of published weights: every known source per variant, its figure and its status.

`ModelInfo.weights` (and `kerasarch weights list`) read it. A source is one of

    keras        keras.applications' file (`weights="imagenet"`), from the registration
    timm         a timm repository on the Hugging Face hub (`weights="hf://timm/<repo>"`)
    bit          Big Transfer's official `.npz` checkpoint (`weights="<folder>/BiT-M-R50x1.npz"`)
    torchvision  a torchvision `.pth` state dict (`weights="<folder>/alexnet-owt-7be5be79.pth"`,
                 needs the `torch` extra)

Its ImageNet top-1 is a published figure with its source, taken from the variant's
registration (`ModelInfo.accuracy`, matched by the label written here) or, for timm tags the
registration does not list, from timm's results-imagenet.csv (`TIMM_FIGURES`); a source with
no published figure has none. A source is *verified* when a loader exists and a test proves
it on reference outputs: the golden files of `tests/golden/` (one per variant and format,
listed in `GOLDEN`) or, for keras.applications files, the twin equivalence suite (each twin
checked directly or on a smaller member of its family, tests/test_weights.py's rule). Everything
else is shown as "not yet verified". Tags were checked against timm 1.0.31's pretrained configs.

No Keras import here: the command line lists weights from `_models.json`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kerasarch.registry import PublishedAccuracy, WeightsSource

if TYPE_CHECKING:
    from kerasarch.registry import ModelInfo

HF = "https://huggingface.co/"
BIT_URL = "https://storage.googleapis.com/bit_models/"
TORCHVISION_URL = "https://download.pytorch.org/models/"
TIMM_CSV = "timm results-imagenet.csv"
TWIN_TEST = "tests/test_weights.py (twin keras.applications.{})"
TWIN_TESTS_ELSEWHERE = {"efficientnet": "tests/test_efficientnet.py (twin keras.applications.{})"}

# The golden files that prove a loader for a variant, by source kind (tests/golden/*.json;
# tests/test_weights_catalog.py checks that each exists and is the variant's and kind's).
GOLDEN: dict[str, dict[str, str]] = {
    "timm": {
        name: f"tests/golden/{name}.json"
        for name in ("resnet18", "resnet34", "resnet50_tv", "wide_resnet50_2", "vgg11_bn",
                     "densenet121", "convnext_tiny", "efficientnet_b0", "bit_r50x1", "mobilenet_v2",
                     "inception_v3")
    },
    "bit": {"bit_r50x1": "tests/golden/bit_r50x1_npz.json"},
    "torchvision": {
        "alexnet": "tests/golden/alexnet_tv.json", "googlenet_bn": "tests/golden/googlenet_tv.json",
    },
}

# timm hub tags per variant: (tag, label of the registration's figure for these weights or
# "" for `TIMM_FIGURES`/none, note).
_TV = "torchvision V1"
NO_LOADER = "no loader yet (timm's layout of this model differs from the Keras one)"
TIMM_TAGS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "resnet18": (("resnet18.a1_in1k", "", ""), ("resnet18.tv_in1k", _TV, "torchvision's V1 weights")),
    "resnet34": (("resnet34.a1_in1k", "", ""), ("resnet34.tv_in1k", _TV, "torchvision's V1 weights")),
    "resnet50_tv": (("resnet50.a1_in1k", "", ""), ("resnet50.tv_in1k", "", "torchvision's V1 weights"),
                    ("resnet50.tv2_in1k", "", "torchvision's V2 weights")),
    **{
        f"resnet{depth}_tv": (
            (f"resnet{depth}.a1_in1k", "", ""),
            (f"resnet{depth}.tv_in1k", _TV, "torchvision's V1 weights"),
            (f"resnet{depth}.tv2_in1k", "torchvision V2", "torchvision's V2 weights"),
        ) for depth in (101, 152)
    },
    "wide_resnet50_2": (("wide_resnet50_2.tv_in1k", _TV, "torchvision's V1 weights"),
                        ("wide_resnet50_2.tv2_in1k", "", "torchvision's V2 weights")),
    "wide_resnet101_2": (("wide_resnet101_2.tv_in1k", _TV, "torchvision's V1 weights"),
                         ("wide_resnet101_2.tv2_in1k", "", "torchvision's V2 weights")),
    **{vgg: ((f"{vgg}.tv_in1k", _TV, "torchvision's weights"),)
       for vgg in ("vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn")},
    **{f"densenet{d}": ((f"densenet{d}.tv_in1k", "" if d == 121 else "torchvision",
                         "torchvision's weights"),) for d in (121, 169, 201)},
    "bit_r50x1": (
        ("resnetv2_50x1_bit.goog_in21k", "", "ImageNet-21k head (21,843 classes)"),
        ("resnetv2_50x1_bit.goog_in21k_ft_in1k", "", "evaluated at 448x448"),
        ("resnetv2_50x1_bit.goog_distilled_in1k", "", "distilled from BiT-M-R152x2"),
    ),
    **{
        f"bit_r{size}": (
            (f"resnetv2_{size}_bit.goog_in21k", "", "ImageNet-21k head (21,843 classes)"),
            (f"resnetv2_{size}_bit.goog_in21k_ft_in1k", "", ""),
        ) for size in ("50x3", "101x1", "101x3", "152x2", "152x4")
    },
    **{f"convnext_{size}": ((f"convnext_{size}.fb_in1k", "", ""),
                            (f"convnext_{size}.fb_in22k_ft_in1k", "", ""))
       for size in ("tiny", "small", "base", "large")},
    "convnext_xlarge": (("convnext_xlarge.fb_in22k_ft_in1k", "", ""),),
    "efficientnet_b0": (("tf_efficientnet_b0.in1k", "", ""),
                        ("tf_efficientnet_b0.ns_jft_in1k", "", "Noisy Student")),
    **{f"efficientnet_b{i}": ((f"tf_efficientnet_b{i}.ns_jft_in1k", "", "Noisy Student"),)
       for i in range(1, 8)},
    "efficientnet_l2": (("tf_efficientnet_l2.ns_jft_in1k", "", "Noisy Student"),),
    "inception_v3": (("inception_v3.tv_in1k", "", "torchvision's weights; needs layout='torch'"),
                     ("inception_v3.tf_in1k", "", "the TF-slim release; needs layout='torch'")),
    # No timm name map yet for the next two: their Keras-layout builders differ from timm's
    # layout (BatchNorm with a scale, average pooling counting the padding, padding, epsilons).
    "inception_resnet_v2": (("inception_resnet_v2.tf_in1k", "", f"the TF-slim release; {NO_LOADER}"),),
    "mobilenet": (("mobilenetv1_100.ra4_e3600_r224_in1k", "", NO_LOADER),),
    "mobilenet_v2": (("mobilenetv2_100.ra_in1k", "", "needs layout='torch' (timm's layout)"),),
}
# Figures of timm tags the registrations do not hold: timm's results-imagenet.csv (top-1, size).
TIMM_FIGURES: dict[str, tuple[float, int]] = {
    "resnet50.a1_in1k": (80.38, 224),
    "resnet50.tv_in1k": (76.16, 224),
    "resnet50.tv2_in1k": (80.85, 224),
    "convnext_tiny.fb_in22k_ft_in1k": (82.90, 224),
    "inception_v3.tv_in1k": (77.47, 299),
}

# Big Transfer's official checkpoints (google-research/big_transfer README): BiT-S (pre-trained
# on ILSVRC-2012) and BiT-M (ImageNet-21k) for the paper's five sizes, BiT-M fine-tuned on
# ILSVRC-2012 (`-ILSVRC2012`), BiT-M-R152x2 (released after the paper) and the distilled R50x1.
# (file under BIT_URL, top-1 or None, figure source, size, note)
_BIT_README = "google-research/big_transfer README (distilled models, paper figure)"
_IN21K = "ImageNet-21k head (21,843 classes): classes=21843, or another count for a new head"
BitFile = tuple[str, float | None, str, int | None, str]


def _bit_files(size: str) -> tuple[BitFile, ...]:
    return (
        (f"BiT-S-{size}.npz", None, "", None, "pre-trained on ILSVRC-2012"),
        (f"BiT-M-{size}.npz", None, "", None, _IN21K),
        (f"BiT-M-{size}-ILSVRC2012.npz", None, "", None, "BiT-M fine-tuned on ILSVRC-2012"),
    )


BIT_FILES: dict[str, tuple[BitFile, ...]] = {
    f"bit_{size.lower()}": _bit_files(size) for size in ("R50x1", "R50x3", "R101x1", "R101x3", "R152x4")
}
BIT_FILES["bit_r152x2"] = (("BiT-M-R152x2.npz", None, "", None, _IN21K),)
BIT_FILES["bit_r50x1"] += (
    ("distill/R50x1_224.npz", 82.8, _BIT_README, 224, "distilled from BiT-M-R152x2"),
    ("distill/R50x1_160.npz", 80.5, _BIT_README, 160, "distilled from BiT-M-R152x2, 160x160 input"),
)

# torchvision's `.pth` files for the variants timm has no weights for: (file, figure label).
TORCHVISION_FILES: dict[str, tuple[tuple[str, str], ...]] = {
    "alexnet": (("alexnet-owt-7be5be79.pth", _TV),),
    "googlenet_bn": (("googlenet-1378be20.pth", "torchvision"),),
}


def _figure(info: ModelInfo, label: str) -> PublishedAccuracy | None:
    """The registration's figure whose weights label is `label` (or starts with `label` and a space)."""
    for accuracy in info.accuracy:
        if accuracy.weights == label or accuracy.weights.startswith(f"{label} "):
            return accuracy
    return None


def _keras(info: ModelInfo) -> list[WeightsSource]:
    if info.imagenet is None:
        return []
    test = TWIN_TESTS_ELSEWHERE.get(info.family, TWIN_TEST)
    return [WeightsSource(
        "keras", info.imagenet.top.url.rsplit("/", 1)[-1], "imagenet", info.imagenet.top.url,
        _figure(info, "keras.applications"), test.format(info.twin) if info.twin else "",
    )]


def _timm(info: ModelInfo) -> list[WeightsSource]:
    sources = []
    for tag, label, note in TIMM_TAGS.get(info.name, ()):
        figure = _figure(info, label or f"timm {tag}")
        if figure is None and tag in TIMM_FIGURES:
            top1, size = TIMM_FIGURES[tag]
            figure = PublishedAccuracy(top1, f"timm {tag}", TIMM_CSV, size)
        sources.append(WeightsSource(
            "timm", f"timm/{tag}", f"hf://timm/{tag}", f"{HF}timm/{tag}", figure,
            GOLDEN["timm"].get(info.name, ""), note,
        ))
    return sources


def _bit(info: ModelInfo) -> list[WeightsSource]:
    return [
        WeightsSource(
            "bit", file.rsplit("/", 1)[-1], f"<folder>/{file.rsplit('/', 1)[-1]}", BIT_URL + file,
            None if top1 is None else PublishedAccuracy(top1, f"BiT {file}", source, size),
            GOLDEN["bit"].get(info.name, ""), note,
        )
        for file, top1, source, size, note in BIT_FILES.get(info.name, ())
    ]


def _torchvision(info: ModelInfo) -> list[WeightsSource]:
    return [
        WeightsSource(
            "torchvision", file, f"<folder>/{file}", TORCHVISION_URL + file, _figure(info, label),
            GOLDEN["torchvision"].get(info.name, ""), "needs PyTorch: pip install 'kerasarch[torch]'",
        )
        for file, label in TORCHVISION_FILES.get(info.name, ())
    ]


def sources(info: ModelInfo) -> tuple[WeightsSource, ...]:
    """Every known source of pretrained weights for a variant, keras first, then timm, BiT, torchvision.

    Args:
        info: The variant's registry metadata.

    Returns:
        The sources, each with its published figure (or None) and its verification.
    """
    return tuple(_keras(info) + _timm(info) + _bit(info) + _torchvision(info))
