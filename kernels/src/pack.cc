// Repacking of [n][k] int8 weights into 16x4 blocks.
#include <algorithm>
#include <cstring>
#include <new>

#include "kernels.h"

namespace tfc {
namespace {

bool BlockIsZero(const int8_t* raw, int n, int k, int br, int bc) {
  for (int o = br * kBlockRows; o < std::min(n, (br + 1) * kBlockRows); ++o) {
    for (int i = bc * kBlockCols; i < std::min(k, (bc + 1) * kBlockCols); ++i) {
      if (raw[static_cast<int64_t>(o) * k + i] != 0) return false;
    }
  }
  return true;
}

int8_t At(const int8_t* raw, int n, int k, int o, int i) {
  return (o < n && i < k) ? raw[static_cast<int64_t>(o) * k + i] : 0;
}

void WriteBlock(const int8_t* raw, int n, int k, int br, int bc, Layout layout, int8_t* dst) {
  const int o0 = br * kBlockRows;
  const int i0 = bc * kBlockCols;
  if (layout == Layout::kQuads) {
    for (int o = 0; o < kBlockRows; ++o)
      for (int i = 0; i < kBlockCols; ++i) *dst++ = At(raw, n, k, o0 + o, i0 + i);
  } else {
    for (int pair = 0; pair < 2; ++pair)
      for (int o = 0; o < kBlockRows; ++o)
        for (int i = 0; i < 2; ++i) *dst++ = At(raw, n, k, o0 + o, i0 + 2 * pair + i);
  }
}

}  // namespace

double BlockDensity(const int8_t* raw, int n, int k) {
  const int rows = (n + kBlockRows - 1) / kBlockRows;
  const int cols = (k + kBlockCols - 1) / kBlockCols;
  if (rows == 0 || cols == 0) return 0.0;
  int64_t nonzero = 0;
  for (int br = 0; br < rows; ++br)
    for (int bc = 0; bc < cols; ++bc) nonzero += BlockIsZero(raw, n, k, br, bc) ? 0 : 1;
  return static_cast<double>(nonzero) / (static_cast<double>(rows) * cols);
}

void Pack(Weights& w, Layout layout, bool sparse) {
  w.layout = layout;
  w.sparse = sparse;
  w.block_rows = (w.n + kBlockRows - 1) / kBlockRows;
  w.block_cols = (w.k + kBlockCols - 1) / kBlockCols;
  w.row_start.assign(w.block_rows + 1, 0);
  w.col.clear();
  for (int br = 0; br < w.block_rows; ++br) {
    int stored = 0;
    for (int bc = 0; bc < w.block_cols; ++bc) {
      if (sparse && BlockIsZero(w.raw, w.n, w.k, br, bc)) continue;
      if (sparse) w.col.push_back(bc);
      ++stored;
    }
    w.row_start[br + 1] = w.row_start[br] + stored;
  }
  // One extra block of slack lets kernels prefetch or over-read safely.
  const size_t bytes = (static_cast<size_t>(w.row_start[w.block_rows]) + 1) * kBlockBytes;
  void* mem = std::aligned_alloc(64, (bytes + 63) / 64 * 64);
  if (mem == nullptr) throw std::bad_alloc();
  std::memset(mem, 0, bytes);
  w.blocks.reset(static_cast<int8_t*>(mem));
  int8_t* dst = w.blocks.get();
  for (int br = 0; br < w.block_rows; ++br) {
    for (int j = w.row_start[br]; j < w.row_start[br + 1]; ++j) {
      const int bc = sparse ? w.col[j] : j - w.row_start[br];
      WriteBlock(w.raw, w.n, w.k, br, bc, layout, dst);
      dst += kBlockBytes;
    }
  }
  w.row_sum.assign(static_cast<size_t>(w.block_rows) * kBlockRows, 0);
  for (int o = 0; o < w.n; ++o) {
    int32_t sum = 0;
    for (int i = 0; i < w.k; ++i) sum += w.raw[static_cast<int64_t>(o) * w.k + i];
    w.row_sum[o] = sum;
  }
}

std::vector<int32_t> FoldBias(const Weights& w, const int32_t* bias, int32_t input_offset) {
  std::vector<int32_t> folded(w.row_sum.size(), 0);
  for (size_t o = 0; o < folded.size(); ++o) {
    const uint32_t b = (bias != nullptr && static_cast<int>(o) < w.n) ? bias[o] : 0;
    folded[o] = static_cast<int32_t>(b + static_cast<uint32_t>(input_offset) *
                                             static_cast<uint32_t>(w.row_sum[o]));
  }
  return folded;
}

}  // namespace tfc
