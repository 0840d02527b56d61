"""tfmot's `AllValuesQuantizer`."""

from tfcompress.compat.tfmot.quantization.keras.quantizers.range_quantizer import RangeQuantizer


class AllValuesQuantizer(RangeQuantizer):
    """Range from the min and max seen over all batches (activations).

    Used for a weight it becomes tfcompress's `WeightQuantizer` (per channel
    when `per_axis`); for an activation, its `ActivationQuantizer`.
    """
