// Portable packed kernel (quads layout): plain C++ that any compiler vectorizes a little.
#include <algorithm>
#include <cstring>

#include "kernels.h"
#include "row_input.h"

namespace tfc {
namespace {

template <bool kSparse>
void Run(const Weights& w, const GemmProblem& p, int block_row_begin, int block_row_end) {
  for (int m = 0; m < p.m; ++m) {
    const int8_t* x = PaddedRow(p, m, w.block_cols * kBlockCols, w.k);
    int8_t* y = p.output + static_cast<int64_t>(m) * p.output_stride;
    for (int br = block_row_begin; br < block_row_end; ++br) {
      int32_t acc[kBlockRows] = {0};
      const BlockRow row = RowOf(w, br);
      for (int j = 0; j < row.count; ++j) {
        const int8_t* b = row.blocks + static_cast<int64_t>(j) * kBlockBytes;
        const int8_t* xx = x + (kSparse ? row.cols[j] : j) * kBlockCols;
        for (int o = 0; o < kBlockRows; ++o) {
          acc[o] += b[4 * o] * xx[0] + b[4 * o + 1] * xx[1] + b[4 * o + 2] * xx[2] +
                    b[4 * o + 3] * xx[3];
        }
      }
      const int n0 = br * kBlockRows;
      WriteRow(acc, p.folded_bias + n0, p.out, n0, std::min(kBlockRows, w.n - n0), y);
    }
  }
}

}  // namespace

void GemmPortable(const Weights& w, const GemmProblem& p, int block_row_begin, int block_row_end) {
  if (w.sparse) {
    Run<true>(w, p, block_row_begin, block_row_end);
  } else {
    Run<false>(w, p, block_row_begin, block_row_end);
  }
}

}  // namespace tfc
