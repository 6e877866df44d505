"""The `kerasarch noisy-student` command (no TensorFlow import until it runs)."""

from __future__ import annotations

import argparse
import json

from kerasarch.train import self_training_config

HELP = "Noisy Student self-training: a teacher pseudo-labels unlabeled images, a noised student learns"
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


def add_parser(sub, commands: dict[str, str]) -> None:
    """Adds `noisy-student` (its help: `commands["noisy-student"]`) to the `kerasarch` subcommands."""
    text = commands["noisy-student"]
    parser = sub.add_parser("noisy-student", help=text, description=text[:1].upper() + text[1:] + ".",
                            epilog=EPILOG)
    self_training_config.add_arguments(parser)
    parser.set_defaults(func=_cmd_noisy_student)
