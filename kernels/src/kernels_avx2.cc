// AVX2 packed kernel: pairs layout, int16 products with vpmaddwd (exact: no saturation).
#if defined(__x86_64__)

#include <immintrin.h>

#include <cstring>

#include "block_store_x86.h"
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
  const BlockRow row = RowOf(w, br);
  const int8_t* b = row.blocks;
  for (int j = 0; j < row.count; ++j, b += kBlockBytes) {
    const int k0 = (kSparse ? row.cols[j] : j) * kBlockCols;
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
      // Accumulate product by product: pairwise sums first would need more
      // registers than the 16 ymm and spill inside the loop.
      acc[r][0] = _mm256_add_epi32(acc[r][0], _mm256_madd_epi16(w00, x0));
      acc[r][1] = _mm256_add_epi32(acc[r][1], _mm256_madd_epi16(w01, x0));
      acc[r][0] = _mm256_add_epi32(acc[r][0], _mm256_madd_epi16(w10, x1));
      acc[r][1] = _mm256_add_epi32(acc[r][1], _mm256_madd_epi16(w11, x1));
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

template <typename T>
TFC_AVX2 inline __m256i Load(const T* p) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}

// Requantization constants of 8 columns, loaded once per tile of rows.
struct Columns8 {
  __m256i multiplier, odd_multiplier, bias;
  __m256i a, b, c, d, e, f;  // once: add/right/sub, even and odd; twice: left/mask/right
};

template <bool kTwice>
TFC_AVX2 inline Columns8 LoadColumns(const RequantTables& t, const int32_t* folded_bias, int c0) {
  Columns8 k;
  k.multiplier = Load(&t.multiplier[c0]);
  k.odd_multiplier = _mm256_srli_epi64(k.multiplier, 32);
  k.bias = Load(folded_bias);
  if (kTwice) {
    k.a = Load(&t.left[c0]);
    k.b = Load(&t.mask[c0]);
    k.c = Load(&t.right[c0]);
    k.d = _mm256_srai_epi32(k.b, 1);
  } else {
    k.a = Load(&t.add[c0]);
    k.b = Load(&t.right64[c0]);
    k.c = Load(&t.sub[c0]);
    k.d = Load(&t.add[c0 + 4]);
    k.e = Load(&t.right64[c0 + 4]);
    k.f = Load(&t.sub[c0 + 4]);
  }
  return k;
}

// Requantizes 8 columns; see RequantTables for the two schemes.
template <bool kTwice>
TFC_AVX2 inline __m256i Requantize8(__m256i x, const Columns8& k) {
  if (!kTwice) {
    // (x * M + 2^(s-1)) >> s, made unsigned by a 2^62 offset so that the
    // logical 64-bit shift is exact.
    __m256i even = _mm256_mul_epi32(x, k.multiplier);
    __m256i odd = _mm256_mul_epi32(_mm256_srli_epi64(x, 32), k.odd_multiplier);
    even = _mm256_sub_epi64(_mm256_srlv_epi64(_mm256_add_epi64(even, k.a), k.b), k.c);
    odd = _mm256_sub_epi64(_mm256_srlv_epi64(_mm256_add_epi64(odd, k.d), k.e), k.f);
    return _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
  }
  // Rounding doubling high multiply, (a * M + 2^30) >> 31, then a rounding
  // right shift that rounds halves away from zero.
  const __m256i a = _mm256_sllv_epi32(x, k.a);
  const __m256i half = _mm256_set1_epi64x(int64_t{1} << 30);
  const __m256i even =
      _mm256_srli_epi64(_mm256_add_epi64(_mm256_mul_epi32(a, k.multiplier), half), 31);
  const __m256i odd = _mm256_srli_epi64(
      _mm256_add_epi64(_mm256_mul_epi32(_mm256_srli_epi64(a, 32), k.odd_multiplier), half), 31);
  const __m256i high = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
  const __m256i remainder = _mm256_and_si256(high, k.b);
  const __m256i threshold =
      _mm256_sub_epi32(k.d, _mm256_cmpgt_epi32(_mm256_setzero_si256(), high));
  return _mm256_sub_epi32(_mm256_srav_epi32(high, k.c), _mm256_cmpgt_epi32(remainder, threshold));
}

template <bool kTwice>
TFC_AVX2 void WriteRows(const int32_t* acc, int rows, const int32_t* folded_bias,
                        const OutputStage& out, int n0, int count, int8_t* dst,
                        int64_t dst_stride) {
  const Columns8 k0 = LoadColumns<kTwice>(*out.tables, folded_bias, n0);
  const Columns8 k1 = LoadColumns<kTwice>(*out.tables, folded_bias + 8, n0 + 8);
  const __m256i zero_point = _mm256_set1_epi32(out.zero_point);
  const __m256i lo = _mm256_set1_epi32(out.act_min);
  const __m256i hi = _mm256_set1_epi32(out.act_max);
  for (int row = 0; row < rows; ++row, acc += kBlockRows, dst += dst_stride) {
    __m256i r0 = Requantize8<kTwice>(_mm256_add_epi32(Load(acc), k0.bias), k0);
    __m256i r1 = Requantize8<kTwice>(_mm256_add_epi32(Load(acc + 8), k1.bias), k1);
    r0 = _mm256_min_epi32(_mm256_max_epi32(_mm256_add_epi32(r0, zero_point), lo), hi);
    r1 = _mm256_min_epi32(_mm256_max_epi32(_mm256_add_epi32(r1, zero_point), lo), hi);
    const __m256i words = _mm256_permute4x64_epi64(_mm256_packs_epi32(r0, r1), 0xD8);
    const __m128i bytes =
        _mm_packs_epi16(_mm256_castsi256_si128(words), _mm256_extracti128_si256(words, 1));
    x86::StoreBlockRow(bytes, count, dst + n0);
  }
}

}  // namespace

void WriteRowsAvx2(const int32_t* acc, int rows, const int32_t* folded_bias,
                   const OutputStage& out, int n0, int count, int8_t* dst, int64_t dst_stride) {
  if (out.round_twice) {
    WriteRows<true>(acc, rows, folded_bias, out, n0, count, dst, dst_stride);
  } else {
    WriteRows<false>(acc, rows, folded_bias, out, n0, count, dst, dst_stride);
  }
}

TFC_AVX2 void WidenAvx2(const int8_t* src, int k, int16_t* dst) {
  int i = 0;
  for (; i + 16 <= k; i += 16) {
    const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i), _mm256_cvtepi8_epi16(bytes));
  }
  for (; i < k; ++i) dst[i] = src[i];
}

void GemmAvx2(const Weights& w, const GemmProblem& p, int block_row_begin, int block_row_end) {
  x86::Drive<Avx2Tile, 4, WidenAvx2>(w, p, block_row_begin, block_row_end);
}

}  // namespace tfc

#endif  // defined(__x86_64__)
