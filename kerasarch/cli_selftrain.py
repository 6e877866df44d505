"""The `kerasarch noisy-student` command (no TensorFlow import until it runs)."""

from __future__ import annotations

import argparse
import json

from kerasarch.train import self_training_config

HELP = "Noisy Student self-training: a teacher pseudo-labels unlabeled images, a noised student learns"
MPL_HELP = "Meta Pseudo Labels: teacher and student trained together, the teacher from the student's feedback"
MPL_EPILOG = """The train split is cut into --labels-per-class labeled images per class (seeded) and the
unlabeled rest; the test split is untouched. RUN_DIR/mpl is the joint training (a `kerasarch train`
run folder whose checkpoints hold both models), RUN_DIR/finetune the student fine-tuned on the
labeled images; an existing --run-dir is resumed.

examples:
  kerasarch mpl                                            LeNet-5 on digits, 10 labels per class
  kerasarch mpl --epochs 50 --finetune-epochs 20 --unlabeled-ratio 7"""
EPILOG = """The train split is cut into --labels-per-class labeled images per class (seeded) and the
unlabeled rest; the test split is untouched. Each stage (teacher, students) is a `kerasarch
train` run folder inside --run-dir; an existing --run-dir is resumed inside the stage it was in.

examples:
  kerasarch noisy-student                                  LeNet-5 on digits, 10 labels per class
  kerasarch noisy-student --iterations 2 --unlabeled-ratio 14
  kerasarch noisy-student --teacher runs/RUN --hard-labels --threshold 0.3"""


def _cmd_noisy_student(args: argparse.Namespace) -> int:
    from kerasarch import train

    result = train.noisy_student(**self_training_config.from_args(args))
    summary = [{"iteration": r["iteration"], "teacher_test_top1": r["teacher"]["test_top1"],
                "student_test_top1": r["student"]["test_top1"]} for r in result.iterations]
    print(json.dumps({"run_dir": str(result.run_dir), "iterations": summary}))
    return 0


def _cmd_mpl(args: argparse.Namespace) -> int:
    from kerasarch import train

    summary = train.meta_pseudo_labels(**self_training_config.from_args(args, self_training_config.MPLConfig))
    print(json.dumps(summary))
    return 0


def add_parser(sub, commands: dict[str, str]) -> None:
    """Adds `noisy-student` and `mpl` (their help: `commands[...]`) to the `kerasarch` subcommands."""
    text = commands["noisy-student"]
    parser = sub.add_parser("noisy-student", help=text, description=text[:1].upper() + text[1:] + ".",
                            epilog=EPILOG)
    self_training_config.add_arguments(parser)
    parser.set_defaults(func=_cmd_noisy_student)
    text = commands["mpl"]
    mpl = sub.add_parser("mpl", help=text, description=text[:1].upper() + text[1:] + ".",
                         epilog=MPL_EPILOG)
    self_training_config.add_arguments(mpl, self_training_config.MPLConfig)
    mpl.set_defaults(func=_cmd_mpl)
