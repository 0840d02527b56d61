// AVX-512 VNNI packed kernel: pairs layout; one zmm holds a whole 16-output block
// row, vpdpwssd fuses the int16 multiply-add into the accumulator.
#if defined(__x86_64__)

#include <immintrin.h>

#include <cstring>

#include "kernels_x86.h"

#define TFC_AVX512 __attribute__((target("avx512f,avx512bw,avx512vnni")))

namespace tfc {
namespace {

TFC_AVX512 inline __m512i Broadcast(const int16_t* x) {
  int32_t v;
  std::memcpy(&v, x, sizeof(v));
  return _mm512_set1_epi32(v);
}

// Two accumulators per row (one per input pair) keep the vpdpwssd chains short.
template <bool kSparse, int kRows>
TFC_AVX512 void TileRows(const Weights& w, int br, const int16_t* x, int stride,
                         int32_t* acc_out) {
  __m512i acc0[kRows];
  __m512i acc1[kRows];
  for (int r = 0; r < kRows; ++r) acc0[r] = acc1[r] = _mm512_setzero_si512();
  const BlockRow row = RowOf(w, br);
  const int8_t* b = row.blocks;
  for (int j = 0; j < row.count; ++j, b += kBlockBytes) {
    const int k0 = (kSparse ? row.cols[j] : j) * kBlockCols;
    const __m512i w0 =
        _mm512_cvtepi8_epi16(_mm256_load_si256(reinterpret_cast<const __m256i*>(b)));
    const __m512i w1 =
        _mm512_cvtepi8_epi16(_mm256_load_si256(reinterpret_cast<const __m256i*>(b + 32)));
    for (int r = 0; r < kRows; ++r) {
      const int16_t* xr = x + static_cast<int64_t>(r) * stride + k0;
      acc0[r] = _mm512_dpwssd_epi32(acc0[r], w0, Broadcast(xr));
      acc1[r] = _mm512_dpwssd_epi32(acc1[r], w1, Broadcast(xr + 2));
    }
  }
  for (int r = 0; r < kRows; ++r) {
    _mm512_store_si512(acc_out + r * kBlockRows, _mm512_add_epi32(acc0[r], acc1[r]));
  }
}

template <bool kSparse, int kMr>
struct Avx512Tile {
  TFC_AVX512 static void Run(const Weights& w, int br, const int16_t* x, int stride, int rows,
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
};

}  // namespace

void GemmAvx512Vnni(const Weights& w, const GemmProblem& p, int block_row_begin,
                    int block_row_end) {
  x86::Drive<Avx512Tile, 8, WidenAvx2>(w, p, block_row_begin, block_row_end);
}

}  // namespace tfc

#endif  // defined(__x86_64__)
