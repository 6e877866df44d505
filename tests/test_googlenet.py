"""GoogLeNet and BN-Inception: what the registry suite cannot see.

Table 1 read back from the built graph, torchvision's parameter count, the auxiliary
classifiers (absent by default, trained with the weighted objective, never served), and
`kerasarch train googlenet` end to end through the CLI.
"""

from __future__ import annotations

import json
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import kerasarch
from kerasarch import export, heads
from kerasarch.models import googlenet as family
from kerasarch.train import model_setup

from conftest import VariablesCreatedWhileTracing


def _trainable(model: keras.Model) -> int:
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


@pytest.fixture(scope="module")
def aux_model():
    """The paper net with its auxiliary classifiers, small: 64x64 inputs, 5 classes."""
    return kerasarch.googlenet(aux_logits=True, input_shape=(64, 64, 3), classes=5)


def test_aux_heads_absent_by_default():
    model = kerasarch.googlenet(input_shape=(64, 64, 3), classes=5)
    assert len(model.outputs) == 1 and model.output_shape == (None, 5)
    assert not [layer.name for layer in model.layers if layer.name.startswith("aux")]


def test_aux_logits_returns_main_then_two_aux_outputs(aux_model):
    assert aux_model.output_names == ["predictions", "aux1_predictions", "aux2_predictions"]
    outputs = aux_model(np.zeros((2, 64, 64, 3), "float32"))
    assert [tuple(o.shape) for o in outputs] == [(2, 5)] * 3
    for output in outputs:  # each head is a softmax classifier
        np.testing.assert_allclose(np.sum(output, axis=-1), 1.0, rtol=1e-5)
    # the heads read 4a and 4d, as the paper places them
    for aux, module in zip(("aux1", "aux2"), family.AUX_AFTER, strict=True):
        pool = aux_model.get_layer(f"{aux}_pool")
        assert pool.input.name == aux_model.get_layer(f"inception_{module}_output").output.name


def test_aux_logits_needs_the_top():
    with pytest.raises(ValueError, match="aux_logits"):
        kerasarch.googlenet(aux_logits=True, include_top=False)


@pytest.mark.parametrize("batch_norm", [False, True])
def test_table1_widths_read_back_from_the_graph(batch_norm):
    model = kerasarch.googlenet(batch_norm=batch_norm, include_top=False)
    sizes = {"3": 28, "4": 14, "5": 7}  # at 224x224
    for row in family.TABLE1:
        shape = model.get_layer(f"inception_{row.name}_output").output.shape
        assert shape[1:] == (sizes[row.name[0]], sizes[row.name[0]], row.out_channels), row
        widths = {branch: model.get_layer(f"inception_{row.name}_{branch}").filters
                  for branch in ("1x1", "3x3_reduce", "3x3", "5x5_reduce", "5x5", "pool_proj")}
        assert widths == {"1x1": row.conv1x1, "3x3_reduce": row.reduce3x3, "3x3": row.conv3x3,
                          "5x5_reduce": row.reduce5x5, "5x5": row.conv5x5,
                          "pool_proj": row.pool_proj}
        kernel = model.get_layer(f"inception_{row.name}_5x5").kernel_size
        assert kernel == ((3, 3) if batch_norm else (5, 5))  # torchvision's quirk
    assert [r.out_channels for r in family.TABLE1] == [256, 480, 512, 512, 512, 528, 832, 832, 1024]


def test_torchvision_variant_trainable_count():
    model = kerasarch.googlenet_bn()
    assert _trainable(model) == 6_624_904  # torchvision 0.29 googlenet, no aux heads
    assert model.count_params() == 6_624_904 + 2 * 7_280  # + BN moving mean/variance
    bn = model.get_layer("inception_3a_1x1_bn")
    assert bn.epsilon == 1e-3 and not model.get_layer("inception_3a_1x1").use_bias


def test_paper_net_has_lrn_and_bn_inception_follows_figure5():
    paper = kerasarch.googlenet(include_top=False, input_shape=(64, 64, 3))
    lrn = paper.get_layer("pool1_norm1")
    x = np.random.default_rng(0).uniform(0, 5, (1, 4, 4, 16)).astype("float32")
    window = np.stack([np.sum(np.pad(x, ((0, 0),) * 3 + ((2, 2),))[..., c:c + 5] ** 2, -1)
                       for c in range(16)], -1)
    np.testing.assert_allclose(lrn(x), x / (1 + 1e-4 / 5 * window) ** 0.75, rtol=1e-5)  # caffe
    v2 = kerasarch.inception_v2(include_top=False)
    channels = [v2.get_layer(f"inception_{r.name}_output").output.shape[-1] for r in family.FIGURE5]
    assert channels == [256, 320, 576, 576, 576, 608, 608, 1056, 1024, 1024]


def test_one_training_step_with_the_weighted_three_loss_objective(aux_model):
    keras.utils.set_random_seed(1)
    model = keras.models.clone_model(aux_model)
    model.compile(optimizer=keras.optimizers.SGD(0.0), **model_setup.objective(model, 5))
    model_setup.build_training_state(model)  # what the trainer does: one trace of the step
    images = np.random.default_rng(0).uniform(0, 255, (4, 64, 64, 3)).astype("float32")
    labels = keras.utils.to_categorical([0, 1, 2, 3], 5)
    batch = tf.data.Dataset.from_tensors((images, labels))
    with VariablesCreatedWhileTracing() as created:
        logs = model.fit(model_setup.fit_targets(model, batch), epochs=1, verbose=0,
                         callbacks=[model_setup.MainOutputLogs()]).history
    assert created == []  # the three losses' trackers and the optimizer's slots existed already
    # and the placeholder prediction that built them left no trace in the logged losses:
    main, aux1, aux2 = (logs[f"{n}_loss"][0] for n in model.output_names)
    assert logs["loss"][0] == pytest.approx(main + 0.3 * (aux1 + aux2), rel=1e-4)
    assert "top1" in logs and logs["top1"] == logs["predictions_top1"]
    # recomputed by hand: dropout is random in training, so compare in inference mode
    ce = keras.losses.categorical_crossentropy
    outputs = model(images, training=False)
    losses = [float(np.mean(ce(labels, o))) for o in outputs]
    evaluated = model_setup.main_output_logs(
        model, model.evaluate(model_setup.fit_targets(model, batch), verbose=0, return_dict=True)
    )
    assert evaluated["loss"] == pytest.approx(losses[0] + 0.3 * (losses[1] + losses[2]), rel=1e-4)
    assert "top1" in evaluated


def test_export_serves_only_the_main_probabilities(aux_model, tmp_path):
    path = export.saved_model(aux_model, tmp_path / "serving", top_k=2, crop_fraction=1.0)
    served = tf.saved_model.load(str(path))
    signature = served.signatures["predict_images"]
    probabilities = [k for k in signature.structured_outputs if "probabilities" in k]
    assert probabilities == ["probabilities"]
    image = np.random.default_rng(1).integers(0, 255, (1, 64, 64, 3), dtype=np.uint8)
    out = signature(images=tf.constant(image))["probabilities"].numpy()
    expected = heads.main_output(aux_model)(image.astype("float32"), training=False)
    np.testing.assert_allclose(out, expected, atol=1e-5)


def _cli(*args, cwd, timeout=900):
    return subprocess.run([sys.executable, "-m", "kerasarch", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)


def test_train_googlenet_cli_then_serve_the_main_output(tmp_path):
    run_dir = tmp_path / "run"
    trained = _cli("train", "googlenet", "--dataset", "digits", "--image-size", "64", "--epochs", "2",
                   "--steps-per-epoch", "2", "--test-split", "", "--run-dir", str(run_dir), cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr[-3000:]
    history = (run_dir / "history.csv").read_text().splitlines()
    header = history[0].split(",")
    assert {"aux1_predictions_loss", "aux2_predictions_loss", "top1", "val_top1"} <= set(header)
    assert len(history) == 3
    best = keras.saving.load_model(run_dir / "best.keras", compile=False)
    assert len(best.outputs) == 3  # trained with its auxiliary classifiers, as the paper
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert 0.0 <= metrics["validation_top1"] <= 1.0  # scored on the main output
    # The run's serving export (what `kerasarch export RUN` names; made by kerasarch.export
    # from best.keras) serves the main output only.
    assert metrics["serving"]["path"].endswith("serving/googlenet/1")
    served = tf.saved_model.load(str(run_dir / "serving" / "googlenet" / "1"))
    outputs = served.signatures["serving_default"].structured_outputs
    assert [k for k in outputs if "probabilities" in k] == ["probabilities"]
    assert outputs["probabilities"].shape[-1] == 10
