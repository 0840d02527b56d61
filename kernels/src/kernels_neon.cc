// NEON packed kernel: quads layout with the Armv8.2 dot product (sdot). One
// vdotq_s32 multiplies 4 outputs x 4 inputs of a block by the same 4 input bytes
// (broadcast to every lane) and adds each output's 4 products into its lane.
//
// Inputs stay raw int8: the input offset is already folded into p.folded_bias.
// Loop order as on x86: per block row of 16 outputs, every tile of up to kMr input
// rows reuses the block's 4 weight registers.
#if defined(__aarch64__)

#include <arm_neon.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels.h"

// Enables sdot per function, so the default build needs no -march flag; callers
// must check IsaSupported(Isa::kNeonDot) first.
#define TFC_DOTPROD __attribute__((target("arch=armv8.2-a+dotprod")))

namespace tfc {
namespace {

constexpr int kMr = 4;  // rows per tile: 16 accumulators + 4 weights + 1 input register

// All input rows, readable up to `padded_k` values (zeros past k). Returns the
// caller's rows when k needs no padding, else a per-thread copy (valid until the
// next call on this thread); *stride receives the distance between rows.
const int8_t* PaddedRows(const GemmProblem& p, int padded_k, int k, int* stride) {
  if (padded_k == k) {
    *stride = p.input_stride;
    return p.input;
  }
  thread_local std::vector<int8_t> buffer;
  buffer.assign(static_cast<size_t>(p.m) * padded_k, 0);
  for (int m = 0; m < p.m; ++m) {
    std::memcpy(buffer.data() + static_cast<size_t>(m) * padded_k,
                p.input + static_cast<int64_t>(m) * p.input_stride, k);
  }
  *stride = padded_k;
  return buffer.data();
}

// The 4 bytes x[0..3] repeated in every 32-bit lane.
TFC_DOTPROD inline int8x16_t Broadcast(const int8_t* x) {
  int32_t v;
  std::memcpy(&v, x, sizeof(v));
  return vreinterpretq_s8_s32(vdupq_n_s32(v));
}

// Accumulates rows x[0..kRows) (each `stride` apart) against block row br into
// acc_out[r * 16 + o].
template <bool kSparse, int kRows>
TFC_DOTPROD void TileRows(const Weights& w, int br, const int8_t* x, int stride,
                          int32_t* acc_out) {
  int32x4_t acc[kRows][4];
  for (int r = 0; r < kRows; ++r)
    for (int q = 0; q < 4; ++q) acc[r][q] = vdupq_n_s32(0);
  const BlockRow row = RowOf(w, br);
  const int8_t* b = row.blocks;
  for (int j = 0; j < row.count; ++j, b += kBlockBytes) {
    const int k0 = (kSparse ? row.cols[j] : j) * kBlockCols;
    // Outputs 0-3, 4-7, 8-11, 12-15; each lane holds one output's 4 weights.
    const int8x16_t w0 = vld1q_s8(b);
    const int8x16_t w1 = vld1q_s8(b + 16);
    const int8x16_t w2 = vld1q_s8(b + 32);
    const int8x16_t w3 = vld1q_s8(b + 48);
    for (int r = 0; r < kRows; ++r) {
      const int8x16_t xr = Broadcast(x + static_cast<int64_t>(r) * stride + k0);
      acc[r][0] = vdotq_s32(acc[r][0], w0, xr);
      acc[r][1] = vdotq_s32(acc[r][1], w1, xr);
      acc[r][2] = vdotq_s32(acc[r][2], w2, xr);
      acc[r][3] = vdotq_s32(acc[r][3], w3, xr);
    }
  }
  for (int r = 0; r < kRows; ++r)
    for (int q = 0; q < 4; ++q) vst1q_s32(acc_out + r * kBlockRows + 4 * q, acc[r][q]);
}

// TileRows for a runtime row count 1..kMr.
template <bool kSparse>
void Tile(const Weights& w, int br, const int8_t* x, int stride, int rows, int32_t* acc) {
  switch (rows) {
    case 4: return TileRows<kSparse, 4>(w, br, x, stride, acc);
    case 3: return TileRows<kSparse, 3>(w, br, x, stride, acc);
    case 2: return TileRows<kSparse, 2>(w, br, x, stride, acc);
    default: return TileRows<kSparse, 1>(w, br, x, stride, acc);
  }
}

}  // namespace

void GemmNeonDot(const Weights& w, const GemmProblem& p, int block_row_begin, int block_row_end) {
  int stride = 0;
  const int8_t* x = PaddedRows(p, w.block_cols * kBlockCols, w.k, &stride);
  alignas(16) int32_t acc[kMr * kBlockRows];
  for (int br = block_row_begin; br < block_row_end; ++br) {
    const int n0 = br * kBlockRows;
    const int count = std::min(kBlockRows, w.n - n0);
    for (int m0 = 0; m0 < p.m; m0 += kMr) {
      const int rows = std::min(kMr, p.m - m0);
      const int8_t* xt = x + static_cast<int64_t>(m0) * stride;
      if (w.sparse) {
        Tile<true>(w, br, xt, stride, rows, acc);
      } else {
        Tile<false>(w, br, xt, stride, rows, acc);
      }
      for (int r = 0; r < rows; ++r) {
        int8_t* y = p.output + static_cast<int64_t>(m0 + r) * p.output_stride;
        WriteRow(acc + r * kBlockRows, p.folded_bias + n0, p.out, n0, count, y);
      }
    }
  }
}

}  // namespace tfc

#endif  // defined(__aarch64__)
