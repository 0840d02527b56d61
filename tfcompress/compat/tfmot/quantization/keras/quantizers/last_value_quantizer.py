"""tfmot's `LastValueQuantizer`."""

from tfcompress.compat.tfmot.quantization.keras.quantizers.range_quantizer import RangeQuantizer


class LastValueQuantizer(RangeQuantizer):
    """Range from the tensor's current min and max (tfmot's weight quantizer).

    Used for a weight it becomes tfcompress's `WeightQuantizer` (per channel
    when `per_axis`); for an activation, its `ActivationQuantizer`.
    """
