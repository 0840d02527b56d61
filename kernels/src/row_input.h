// Input rows padded to whole 4-wide block columns, for the packed kernels.
#ifndef TFCOMPRESS_KERNELS_ROW_INPUT_H_
#define TFCOMPRESS_KERNELS_ROW_INPUT_H_

#include <cstring>
#include <vector>

#include "kernels.h"

namespace tfc {

// Row m of the problem's input with at least `padded_k` readable values; values
// past k are zero. Returns the row itself when no padding is needed, else a copy
// in a per-thread buffer (valid until the next call on this thread).
inline const int8_t* PaddedRow(const GemmProblem& p, int m, int padded_k, int k) {
  const int8_t* row = p.input + static_cast<int64_t>(m) * p.input_stride;
  if (padded_k == k) return row;
  thread_local std::vector<int8_t> buffer;
  buffer.assign(padded_k, 0);
  std::memcpy(buffer.data(), row, k);
  return buffer.data();
}

// Rows [m0, m0 + rows) sign-extended to int16 and zero-padded to `padded_k`,
// stored `padded_k` apart in a per-thread buffer.
inline const int16_t* WideRows(const GemmProblem& p, int m0, int rows, int padded_k, int k) {
  thread_local std::vector<int16_t> buffer;
  buffer.assign(static_cast<size_t>(rows) * padded_k + 8, 0);
  for (int r = 0; r < rows; ++r) {
    const int8_t* src = p.input + static_cast<int64_t>(m0 + r) * p.input_stride;
    int16_t* dst = buffer.data() + static_cast<size_t>(r) * padded_k;
    for (int i = 0; i < k; ++i) dst[i] = src[i];
  }
  return buffer.data();
}

}  // namespace tfc

#endif  // TFCOMPRESS_KERNELS_ROW_INPUT_H_
