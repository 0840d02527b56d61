// Driver for the AVX2 packed kernel (pairs layout, int16 inputs).
//
// Loop order: all input rows are widened to int16 once; then, per block row of
// 16 outputs (its weights stay in L1), every tile of kMr input rows is
// accumulated by the ISA's Tile function and written by WriteRow.
#ifndef TFCOMPRESS_KERNELS_KERNELS_X86_H_
#define TFCOMPRESS_KERNELS_KERNELS_X86_H_

#include <algorithm>

#include "kernels.h"
#include "row_input.h"

namespace tfc::x86 {

// Tile<kSparse, kRows>::Run(w, br, x, x_stride, rows, acc) accumulates rows
// x[0..rows) of block row br into acc[r * 16 + o]; Widen(src, k, dst) sign-extends
// k int8 values.
template <template <bool, int> class Tile, int kMr, void (*Widen)(const int8_t*, int, int16_t*)>
void Drive(const Weights& w, const GemmProblem& p, int block_row_begin, int block_row_end) {
  const int padded_k = w.block_cols * kBlockCols;
  int16_t* x = WideBuffer(static_cast<size_t>(p.m) * padded_k);
  for (int m = 0; m < p.m; ++m) {
    int16_t* row = x + static_cast<size_t>(m) * padded_k;
    Widen(p.input + static_cast<int64_t>(m) * p.input_stride, w.k, row);
    for (int i = w.k; i < padded_k; ++i) row[i] = 0;
  }
  alignas(64) int32_t acc[kMr * kBlockRows];
  for (int br = block_row_begin; br < block_row_end; ++br) {
    const int n0 = br * kBlockRows;
    const int count = std::min(kBlockRows, w.n - n0);
    for (int m0 = 0; m0 < p.m; m0 += kMr) {
      const int rows = std::min(kMr, p.m - m0);
      const int16_t* xt = x + static_cast<size_t>(m0) * padded_k;
      if (w.sparse) {
        Tile<true, kMr>::Run(w, br, xt, padded_k, rows, acc);
      } else {
        Tile<false, kMr>::Run(w, br, xt, padded_k, rows, acc);
      }
      int8_t* y = p.output + static_cast<int64_t>(m0) * p.output_stride;
      if (p.out.tables != nullptr) {
        WriteRowsAvx2(acc, rows, p.folded_bias + n0, p.out, n0, count, y, p.output_stride);
      } else {
        for (int r = 0; r < rows; ++r, y += p.output_stride)
          WriteRow(acc + r * kBlockRows, p.folded_bias + n0, p.out, n0, count, y);
      }
    }
  }
}

}  // namespace tfc::x86

#endif  // TFCOMPRESS_KERNELS_KERNELS_X86_H_
