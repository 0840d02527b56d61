// AVX-512 VNNI packed kernel: quads layout; one zmm holds a whole 16x4 block and
// vpdpbusd multiplies it by 4 inputs and adds the 4 products into 16 int32 sums.
//
// vpdpbusd wants unsigned inputs: the kernel reads x + 128 (x with its sign bit
// flipped) and starts every accumulator at -128 * sum_k w[o][k], so it ends with
// sum_k x * w exactly (int32 arithmetic wraps the same way in both orders).
#if defined(__x86_64__)

#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "kernels.h"
#include "row_input.h"

#define TFC_AVX512 __attribute__((target("avx512f,avx512bw,avx512vnni")))

namespace tfc {
namespace {

constexpr int kMr = 8;  // input rows per tile: 8 accumulators, no spills

TFC_AVX512 inline __m512i Broadcast(const uint8_t* x) {
  int32_t v;
  std::memcpy(&v, x, sizeof(v));
  return _mm512_set1_epi32(v);
}

// dst[0..padded_k) = src[0..k) + 128 as unsigned bytes, then 128 (w is 0 there).
TFC_AVX512 void ToUnsigned(const int8_t* src, int k, int padded_k, uint8_t* dst) {
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
  int i = 0;
  for (; i + 64 <= k; i += 64) {
    const __m512i v = _mm512_loadu_si512(src + i);
    _mm512_storeu_si512(dst + i, _mm512_xor_si512(v, flip));
  }
  for (; i < k; ++i) dst[i] = static_cast<uint8_t>(src[i]) ^ 0x80;
  for (; i < padded_k; ++i) dst[i] = 0x80;
}

// Accumulates rows x[0..kRows) of block row br into acc_out[r * 16 + o]. A single
// row (a GEMV) keeps kChains independent sums so vpdpbusd's latency is hidden.
template <bool kSparse, int kRows>
TFC_AVX512 void TileRows(const Weights& w, int br, const uint8_t* x, int stride,
                         int32_t* acc_out) {
  constexpr int kChains = kRows == 1 ? 4 : kRows < 4 ? 2 : 1;
  alignas(64) int32_t offset[kBlockRows];
  const int32_t* row_sum = w.row_sum.data() + br * kBlockRows;
  for (int o = 0; o < kBlockRows; ++o) {
    offset[o] = static_cast<int32_t>(0u - (static_cast<uint32_t>(row_sum[o]) << 7));
  }
  const __m512i start = _mm512_load_si512(offset);
  __m512i acc[kChains][kRows];
  for (int r = 0; r < kRows; ++r) {
    acc[0][r] = start;
    for (int c = 1; c < kChains; ++c) acc[c][r] = _mm512_setzero_si512();
  }
  const BlockRow row = RowOf(w, br);
  const int8_t* b = row.blocks;
  int j = 0;
  for (; j + kChains <= row.count; j += kChains, b += kChains * kBlockBytes) {
    for (int c = 0; c < kChains; ++c) {
      const int k0 = (kSparse ? row.cols[j + c] : j + c) * kBlockCols;
      const __m512i wv = _mm512_load_si512(b + c * kBlockBytes);
      for (int r = 0; r < kRows; ++r) {
        acc[c][r] = _mm512_dpbusd_epi32(acc[c][r], Broadcast(x + r * stride + k0), wv);
      }
    }
  }
  for (; j < row.count; ++j, b += kBlockBytes) {
    const int k0 = (kSparse ? row.cols[j] : j) * kBlockCols;
    const __m512i wv = _mm512_load_si512(b);
    for (int r = 0; r < kRows; ++r) {
      acc[0][r] = _mm512_dpbusd_epi32(acc[0][r], Broadcast(x + r * stride + k0), wv);
    }
  }
  for (int r = 0; r < kRows; ++r) {
    __m512i sum = acc[0][r];
    for (int c = 1; c < kChains; ++c) sum = _mm512_add_epi32(sum, acc[c][r]);
    _mm512_store_si512(acc_out + r * kBlockRows, sum);
  }
}

template <bool kSparse>
TFC_AVX512 void Tile(const Weights& w, int br, const uint8_t* x, int stride, int rows,
                     int32_t* acc) {
  switch (rows) {
    case 8: return TileRows<kSparse, 8>(w, br, x, stride, acc);
    case 7: return TileRows<kSparse, 7>(w, br, x, stride, acc);
    case 6: return TileRows<kSparse, 6>(w, br, x, stride, acc);
    case 5: return TileRows<kSparse, 5>(w, br, x, stride, acc);
    case 4: return TileRows<kSparse, 4>(w, br, x, stride, acc);
    case 3: return TileRows<kSparse, 3>(w, br, x, stride, acc);
    case 2: return TileRows<kSparse, 2>(w, br, x, stride, acc);
    default: return TileRows<kSparse, 1>(w, br, x, stride, acc);
  }
}

}  // namespace

// Loop order as the other x86 kernels: all input rows converted once; then per block
// row (its weights stay in L1) every tile of kMr rows is accumulated and written.
void GemmAvx512Vnni(const Weights& w, const GemmProblem& p, int block_row_begin,
                    int block_row_end) {
  const int padded_k = w.block_cols * kBlockCols;
  uint8_t* x = ByteBuffer(static_cast<size_t>(p.m) * padded_k);
  for (int m = 0; m < p.m; ++m) {
    ToUnsigned(p.input + static_cast<int64_t>(m) * p.input_stride, w.k, padded_k,
               x + static_cast<size_t>(m) * padded_k);
  }
  alignas(64) int32_t acc[kMr * kBlockRows];
  for (int br = block_row_begin; br < block_row_end; ++br) {
    const int n0 = br * kBlockRows;
    const int count = std::min(kBlockRows, w.n - n0);
    for (int m0 = 0; m0 < p.m; m0 += kMr) {
      const int rows = std::min(kMr, p.m - m0);
      const uint8_t* xt = x + static_cast<size_t>(m0) * padded_k;
      if (w.sparse) {
        Tile<true>(w, br, xt, padded_k, rows, acc);
      } else {
        Tile<false>(w, br, xt, padded_k, rows, acc);
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

}  // namespace tfc

#endif  // defined(__x86_64__)
