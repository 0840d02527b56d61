"""Training compressed (and plain) Keras 3 models on several machines with `tf.distribute`.

`MultiWorkerMirroredStrategy` is TensorFlow's multi-worker strategy with the one method
that Keras 3's `model.fit` needs fixed (keras-team/keras#20585); `is_chief` and
`worker_dir` say which process writes shared files and where the others write theirs.
"""

from tfcompress.distribute.chief import is_chief, worker_dir
from tfcompress.distribute.multi_worker_strategy import MultiWorkerMirroredStrategy

__all__ = ["MultiWorkerMirroredStrategy", "is_chief", "worker_dir"]
