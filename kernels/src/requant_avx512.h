// The AVX-512 output stage shared by the GEMM and depthwise kernels: 16 int32 sums of one
// output row requantized exactly as TFLite does (RequantTables), clamped and saturated to int8.
#ifndef TFCOMPRESS_KERNELS_REQUANT_AVX512_H_
#define TFCOMPRESS_KERNELS_REQUANT_AVX512_H_
#if defined(__x86_64__)

#include <immintrin.h>

#include "kernels.h"

#define TFC_AVX512 __attribute__((target("avx512f,avx512bw,avx512vnni")))

// gcc 12 warns inside its own AVX-512 shift and multiply intrinsics, whose unused merge
// operand is _mm512_undefined_epi32() (GCC bug 105593, fixed in gcc 13); for every file
// that includes this one.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

namespace tfc::x86 {

// Requantization constants of the 16 columns n0.. for a tile of rows, loaded once: TFLite's
// single rounding, (acc * M + 2^(s-1)) >> s in 64-bit lanes (a, b add and c, d shift the even
// and odd columns; the sum is offset by 2^62 so that a logical shift, which SIMDe emulates
// too, is exact, and the offset's 2^(62-s) comes off modulo 2^32 with the zero point: zero16),
// or its double rounding (kTwice: a = left shift, b = remainder mask, c = right shift, d =
// half the mask), then the zero point. vpmovsdb saturates to [-128, 127]: only a narrower
// activation range needs a max or min.
template <bool kTwice>
struct Columns16 {
  __m512i bias, multiplier, odd_multiplier, a, b, c, d, zero, lo, hi;
  bool clamp_lo, clamp_hi;
};

template <bool kTwice>
TFC_AVX512 inline Columns16<kTwice> ColumnsOf(const OutputStage& out, const int32_t* bias,
                                              int n0) {
  const RequantTables& t = *out.tables;
  Columns16<kTwice> k;
  k.bias = _mm512_loadu_si512(bias + n0);
  k.multiplier = _mm512_loadu_si512(t.multiplier.data() + n0);
  k.odd_multiplier = _mm512_srli_epi64(k.multiplier, 32);
  if (kTwice) {
    k.a = _mm512_loadu_si512(t.left.data() + n0);
    k.b = _mm512_loadu_si512(t.mask.data() + n0);
    k.c = _mm512_loadu_si512(t.right.data() + n0);
    k.d = _mm512_srli_epi32(k.b, 1);  // the mask is >= 0
    k.zero = _mm512_set1_epi32(out.zero_point);
  } else {
    k.a = _mm512_loadu_si512(t.add16.data() + n0);
    k.b = _mm512_loadu_si512(t.add16.data() + n0 + 8);
    k.c = _mm512_loadu_si512(t.right16.data() + n0);
    k.d = _mm512_loadu_si512(t.right16.data() + n0 + 8);
    k.zero = _mm512_loadu_si512(t.zero16.data() + n0);
  }
  k.lo = _mm512_set1_epi32(out.act_min);
  k.hi = _mm512_set1_epi32(out.act_max);
  k.clamp_lo = out.act_min > -128;
  k.clamp_hi = out.act_max < 127;
  return k;
}

// 16 outputs of one row from their sums without the bias, saturated to int8.
template <bool kTwice>
TFC_AVX512 inline __m128i Requantize16(__m512i acc, const Columns16<kTwice>& k) {
  const __m512i x = _mm512_add_epi32(acc, k.bias);
  __m512i v;
  if (!kTwice) {
    const __m512i even =
        _mm512_srlv_epi64(_mm512_add_epi64(_mm512_mul_epi32(x, k.multiplier), k.a), k.c);
    const __m512i odd = _mm512_srlv_epi64(
        _mm512_add_epi64(_mm512_mul_epi32(_mm512_srli_epi64(x, 32), k.odd_multiplier), k.b),
        k.d);
    v = _mm512_mask_blend_epi32(0xAAAA, even, _mm512_slli_epi64(odd, 32));
  } else {
    // Rounding doubling high multiply, (a * M + 2^30) >> 31, then a rounding right shift
    // that rounds halves away from zero (as WriteRowsAvx2).
    const __m512i a = _mm512_sllv_epi32(x, k.a);
    const __m512i half = _mm512_set1_epi64(int64_t{1} << 30);
    const __m512i even =
        _mm512_srli_epi64(_mm512_add_epi64(_mm512_mul_epi32(a, k.multiplier), half), 31);
    const __m512i odd = _mm512_srli_epi64(
        _mm512_add_epi64(_mm512_mul_epi32(_mm512_srli_epi64(a, 32), k.odd_multiplier), half),
        31);
    const __m512i high = _mm512_mask_blend_epi32(0xAAAA, even, _mm512_slli_epi64(odd, 32));
    const __m512i one = _mm512_set1_epi32(1);
    const __mmask16 negative = _mm512_cmpgt_epi32_mask(_mm512_setzero_si512(), high);
    const __m512i threshold = _mm512_mask_add_epi32(k.d, negative, k.d, one);
    const __mmask16 up = _mm512_cmpgt_epi32_mask(_mm512_and_si512(high, k.b), threshold);
    // high >> right, arithmetic: a logical shift of ~high where high < 0 (only intrinsics
    // that the emulated test build's SIMDe has).
    const __m512i sign =
        _mm512_mask_blend_epi32(negative, _mm512_setzero_si512(), _mm512_set1_epi32(-1));
    const __m512i shifted =
        _mm512_xor_si512(_mm512_srlv_epi32(_mm512_xor_si512(high, sign), k.c), sign);
    v = _mm512_mask_add_epi32(shifted, up, shifted, one);
  }
  v = _mm512_add_epi32(v, k.zero);
  if (k.clamp_lo) v = _mm512_max_epi32(v, k.lo);
  if (k.clamp_hi) v = _mm512_min_epi32(v, k.hi);
  return _mm512_cvtsepi32_epi8(v);
}

}  // namespace tfc::x86

#endif  // defined(__x86_64__)
#endif  // TFCOMPRESS_KERNELS_REQUANT_AVX512_H_
