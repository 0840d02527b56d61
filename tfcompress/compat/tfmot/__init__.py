"""tfmot's public namespaces on tfcompress: `import tfcompress.compat.tfmot as tfmot`.

Code written for `tensorflow_model_optimization` runs with the import swapped
and `tf.keras` replaced by `keras` (Keras 3). The names map onto tfcompress's
own entry points, which already share tfmot's names and argument names; small
adapters cover tfmot's `QuantizeConfig` and quantizer protocols, named
clusterable weights, its custom-training-loop callback calls and the
collaborative-optimization schemes. `load_model` reads a tf_keras `.h5` model saved
by tfmot into tfcompress's wrappers.
"""

from tfcompress.compat.tfmot import clustering, experimental, quantization, sparsity
from tfcompress.compat.tfmot.h5_loading import load_model

__all__ = ["clustering", "experimental", "load_model", "quantization", "sparsity"]
