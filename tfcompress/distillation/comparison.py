"""`DistillationComparison`: a teacher, a student trained from scratch and a distilled one."""

from __future__ import annotations

from tfcompress.reporting import CompressionReport
from tfcompress.reporting.measures import select_measures
from tfcompress.reporting.table import Renderable, fmt_ratio, render_table

_MEASURES = select_measures(
    "params", "macs", "tflite_bytes", "gzip_bytes", "tflite_accuracy", "latency_ms"
)


class DistillationComparison(Renderable):
    """Three reports side by side, and what distillation bought over training from scratch.

    Args:
        teacher: Report of the teacher (Keras model and `.tflite`, with data).
        scratch: Report of the student trained on the labels alone.
        distilled: Report of the same student architecture, distilled.

    Example:
        >>> from tfcompress.distillation.comparison import DistillationComparison
        >>> data = tfcompress.datasets.load_digits()
        >>> x, y = data.x_train[:200], data.y_train[:200]
        >>> loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        >>> teacher = keras.Sequential([
        ...     keras.Input((8, 8, 1)), keras.layers.Flatten(),
        ...     keras.layers.Dense(64, activation="relu"), keras.layers.Dense(10)], name="teacher")
        >>> teacher.compile("adam", loss=loss)
        >>> _ = teacher.fit(x, y, epochs=1, verbose=0)
        >>> scratch = tfcompress.make_student(teacher, width=0.25, name="scratch")
        >>> scratch.compile("adam", loss=loss)
        >>> _ = scratch.fit(x, y, epochs=1, verbose=0)
        >>> student = tfcompress.make_student(teacher, width=0.25, name="student")
        >>> distiller = tfcompress.Distiller(teacher, student)
        >>> distiller.compile("adam", loss=loss)
        >>> _ = distiller.fit(x, y, epochs=1, verbose=0)
        >>> test = (data.x_test[:100], data.y_test[:100])
        >>> teacher_report, scratch_report, student_report = [
        ...     tfcompress.report(m, tfcompress.export_tflite(m), data=test)
        ...     for m in (teacher, scratch, student)]
        >>> comparison = DistillationComparison(teacher_report, scratch_report, student_report)
        >>> -1 <= comparison.gain <= 1
        True
        >>> print(comparison)
        Distillation: teacher -> student
        ...
    """

    def __init__(
        self, teacher: CompressionReport, scratch: CompressionReport, distilled: CompressionReport
    ):
        self.teacher, self.scratch, self.distilled = teacher, scratch, distilled

    def _accuracy(self, report: CompressionReport) -> float | None:
        return report.summary.get("tflite_accuracy")

    @property
    def gain(self) -> float | None:
        """Accuracy of the distilled student minus the scratch student's (`.tflite`)."""
        distilled, scratch = self._accuracy(self.distilled), self._accuracy(self.scratch)
        return None if distilled is None or scratch is None else distilled - scratch

    def _render(self, markdown: bool) -> str:
        reports = (self.teacher, self.scratch, self.distilled)
        rows = [
            [m.label, *(m.cell(r.summary) for r in reports)]
            for m in _MEASURES
            if any(m.key in r.summary for r in reports)
        ]
        headers = ["measure", "teacher", "student, scratch", "student, distilled"]
        title = f"Distillation: {self.teacher.name} -> {self.distilled.name}"
        parts = [f"## {title}" if markdown else title, render_table(headers, rows, markdown)]
        if self.gain is not None:
            teacher, student = self.teacher.summary, self.distilled.summary
            ratios = [
                fmt_ratio(teacher.get(key), student.get(key))
                for key in ("params", "tflite_bytes", "latency_ms")
            ]
            parts.append(
                f"Distillation vs scratch: {100 * self.gain:+.1f} pt. The student has {ratios[0]} "
                f"fewer parameters than the teacher, a {ratios[1]} smaller .tflite, and runs "
                f"{ratios[2]} faster."
            )
        return "\n\n".join(parts) + "\n"

    def to_dict(self) -> dict:
        return {
            "teacher": self.teacher.to_dict(),
            "scratch": self.scratch.to_dict(),
            "distilled": self.distilled.to_dict(),
            "gain": self.gain,
        }
