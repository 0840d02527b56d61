"""Drop-in namespaces for code written against other toolkits.

`import tfcompress.compat.tfmot as tfmot` gives tfmot's `sparsity.keras`,
`quantization.keras`, `clustering.keras` and `experimental.combine` names,
mapped onto tfcompress. Nothing else in tfcompress imports this package.
"""
