"""Knowledge distillation for compressed students: soft/hard targets, hints with adapters,
several teachers (Keras, `.tflite` or callables), cached teacher outputs, and thin students."""

from tfcompress.distillation.distiller import Distiller
from tfcompress.distillation.external_teacher import ExternalTeacher
from tfcompress.distillation.hard_target_distillation import HardTargetDistillation
from tfcompress.distillation.hint_distillation import HintDistillation
from tfcompress.distillation.make_student import make_student
from tfcompress.distillation.soft_target_distillation import SoftTargetDistillation

__all__ = [
    "Distiller",
    "ExternalTeacher",
    "HardTargetDistillation",
    "HintDistillation",
    "SoftTargetDistillation",
    "make_student",
]
