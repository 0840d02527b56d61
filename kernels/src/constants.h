// The numbers the kernels share with Python (tfcompress/core/blocks.py).
//
// tests/core/test_constants.py reads this file and checks that each value equals
// its Python twin: change both together.
#ifndef TFCOMPRESS_KERNELS_CONSTANTS_H_
#define TFCOMPRESS_KERNELS_CONSTANTS_H_

namespace tfc {

// One weight block: 16 outputs by 4 inputs of the [n][k] matrix (BLOCK_SHAPE).
constexpr int kBlockRows = 16;  // outputs per block
constexpr int kBlockCols = 4;   // inputs per block
constexpr int kBlockBytes = kBlockRows * kBlockCols;

// KernelChoice::kAuto runs a layer block-sparse when at most this fraction of its
// blocks holds a non-zero (SPARSE_MAX_DENSITY).
constexpr double kSparseMaxDensity = 0.7;

}  // namespace tfc

#endif  // TFCOMPRESS_KERNELS_CONSTANTS_H_
