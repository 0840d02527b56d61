// AVX2 packed kernel: pairs layout, int16 products with vpmaddwd (exact: no saturation).
#if defined(__x86_64__)

#include <immintrin.h>

#include <cstring>

#include "kernels_x86.h"

#define TFC_AVX2 __attribute__((target("avx2")))

namespace tfc {
namespace {

TFC_AVX2 inline __m256i Broadcast(const int16_t* x) {
  int32_t v;
  std::memcpy(&v, x, sizeof(v));
  return _mm256_set1_epi32(v);
}

template <bool kSparse, int kRows>
TFC_AVX2 void TileRows(const Weights& w, int br, const int16_t* x, int stride, int32_t* acc_out) {
  __m256i acc[kRows][2];
  for (int r = 0; r < kRows; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_si256();
  const int begin = w.row_start[br];
  const int end = w.row_start[br + 1];
  const int8_t* b = w.blocks.get() + static_cast<int64_t>(begin) * kBlockBytes;
  const int32_t* cols = kSparse ? w.col.data() + begin : nullptr;
  for (int j = 0; j < end - begin; ++j, b += kBlockBytes) {
    const int k0 = (kSparse ? cols[j] : j) * kBlockCols;
    const __m256i w00 = _mm256_cvtepi8_epi16(_mm_load_si128(reinterpret_cast<const __m128i*>(b)));
    const __m256i w01 =
        _mm256_cvtepi8_epi16(_mm_load_si128(reinterpret_cast<const __m128i*>(b + 16)));
    const __m256i w10 =
        _mm256_cvtepi8_epi16(_mm_load_si128(reinterpret_cast<const __m128i*>(b + 32)));
    const __m256i w11 =
        _mm256_cvtepi8_epi16(_mm_load_si128(reinterpret_cast<const __m128i*>(b + 48)));
    for (int r = 0; r < kRows; ++r) {
      const int16_t* xr = x + static_cast<int64_t>(r) * stride + k0;
      const __m256i x0 = Broadcast(xr);
      const __m256i x1 = Broadcast(xr + 2);
      acc[r][0] = _mm256_add_epi32(
          acc[r][0], _mm256_add_epi32(_mm256_madd_epi16(w00, x0), _mm256_madd_epi16(w10, x1)));
      acc[r][1] = _mm256_add_epi32(
          acc[r][1], _mm256_add_epi32(_mm256_madd_epi16(w01, x0), _mm256_madd_epi16(w11, x1)));
    }
  }
  for (int r = 0; r < kRows; ++r) {
    _mm256_store_si256(reinterpret_cast<__m256i*>(acc_out + r * kBlockRows), acc[r][0]);
    _mm256_store_si256(reinterpret_cast<__m256i*>(acc_out + r * kBlockRows + 8), acc[r][1]);
  }
}

template <bool kSparse, int kMr>
struct Avx2Tile {
  TFC_AVX2 static void Run(const Weights& w, int br, const int16_t* x, int stride, int rows,
                           int32_t* acc) {
    switch (rows) {
      case 4: return TileRows<kSparse, 4>(w, br, x, stride, acc);
      case 3: return TileRows<kSparse, 3>(w, br, x, stride, acc);
      case 2: return TileRows<kSparse, 2>(w, br, x, stride, acc);
      default: return TileRows<kSparse, 1>(w, br, x, stride, acc);
    }
  }
};

}  // namespace

void GemmAvx2(const Weights& w, const GemmProblem& p, int block_row_begin, int block_row_end) {
  x86::Drive<Avx2Tile, 4>(w, p, block_row_begin, block_row_end);
}

}  // namespace tfc

#endif  // defined(__x86_64__)
