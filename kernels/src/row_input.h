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

// A per-thread buffer of at least `count` int16 values.
inline int16_t* WideBuffer(size_t count) {
  thread_local std::vector<int16_t> buffer;
  if (buffer.size() < count) buffer.resize(count);
  return buffer.data();
}

// A per-thread buffer of at least `count` bytes.
inline uint8_t* ByteBuffer(size_t count) {
  thread_local std::vector<uint8_t> buffer;
  if (buffer.size() < count) buffer.resize(count);
  return buffer.data();
}

}  // namespace tfc

#endif  // TFCOMPRESS_KERNELS_ROW_INPUT_H_
