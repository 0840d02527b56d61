"""tfmot's `MovingAverageQuantizer`."""

from tfcompress.compat.tfmot.quantization.keras.quantizers.range_quantizer import RangeQuantizer


class MovingAverageQuantizer(RangeQuantizer):
    """Range from moving averages of the batches' min and max (activations).

    Used for a weight it becomes tfcompress's `WeightQuantizer` (per channel
    when `per_axis`); for an activation, its `ActivationQuantizer`.
    """
