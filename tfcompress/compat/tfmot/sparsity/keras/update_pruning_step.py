"""`UpdatePruningStep` that also follows tfmot's custom-training-loop calls."""

from tfcompress import pruning


class UpdatePruningStep(pruning.UpdatePruningStep):
    """`tfcompress.pruning.UpdatePruningStep` accepting tfmot's manual calls.

    tfmot's guide drives the callback by hand in a custom training loop:
    `on_train_begin()`, `on_train_batch_begin(batch=...)` before each step and
    `on_epoch_end(batch=...)`, never `on_train_batch_end`. This one counts a
    step when a batch begins before the previous one ended, and takes `batch=`
    in `on_epoch_end`. Under `model.fit` it behaves exactly like tfcompress's.
    """

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self._batch_open = False

    def on_train_batch_begin(self, batch=None, logs=None):
        if self._batch_open:
            super().on_train_batch_end(batch, logs)
        self._batch_open = True
        super().on_train_batch_begin(batch, logs)

    def on_train_batch_end(self, batch=None, logs=None):
        self._batch_open = False
        super().on_train_batch_end(batch, logs)

    def on_epoch_end(self, epoch=None, logs=None, batch=None):
        if self._batch_open:
            self.on_train_batch_end(batch, logs)
        super().on_epoch_end(epoch, logs)
