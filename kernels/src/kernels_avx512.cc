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

#include "block_store_x86.h"
#include "kernels.h"
#include "row_input.h"

#define TFC_AVX512 __attribute__((target("avx512f,avx512bw,avx512vnni")))

// gcc 12 warns inside its own AVX-512 shift and multiply intrinsics, whose unused merge
// operand is _mm512_undefined_epi32() (GCC bug 105593, fixed in gcc 13).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

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

// The output stage of the GEMV, its constants loaded once per call: requantizes 16 columns
// n0.. of one row with a single rounding, (acc * M + 2^(s-1)) >> s, in 64-bit lanes (even
// columns, then odd ones). The sum is offset by 2^62 so that a logical shift (which SIMDe
// emulates too) is exact; the offset's 2^(62-s) comes off modulo 2^32 together with the zero
// point added (zero16). vpmovsdb saturates to [-128, 127]: only a narrower activation range
// needs a max or min.
struct Output16 {
  const int32_t* multiplier;
  const int64_t* add;
  const int64_t* right;
  const int32_t* zero;
  __m512i lo, hi;
  bool clamp_lo, clamp_hi;
};

TFC_AVX512 inline Output16 OutputOf(const OutputStage& out) {
  const RequantTables& t = *out.tables;
  return {t.multiplier.data(), t.add16.data(), t.right16.data(), t.zero16.data(),
          _mm512_set1_epi32(out.act_min), _mm512_set1_epi32(out.act_max), out.act_min > -128,
          out.act_max < 127};
}

TFC_AVX512 inline __m512i Shift16(__m512i product, const Output16& o, int slot) {
  return _mm512_srlv_epi64(_mm512_add_epi64(product, _mm512_loadu_si512(o.add + slot)),
                           _mm512_loadu_si512(o.right + slot));
}

TFC_AVX512 inline void WriteRow16(__m512i acc, const Output16& o, int n0, int count,
                                  int8_t* dst) {
  const __m512i multiplier = _mm512_loadu_si512(o.multiplier + n0);
  const __m512i even = Shift16(_mm512_mul_epi32(acc, multiplier), o, n0);
  const __m512i odd = Shift16(
      _mm512_mul_epi32(_mm512_srli_epi64(acc, 32), _mm512_srli_epi64(multiplier, 32)), o,
      n0 + 8);
  __m512i v = _mm512_mask_blend_epi32(0xAAAA, even, _mm512_slli_epi64(odd, 32));
  v = _mm512_add_epi32(v, _mm512_loadu_si512(o.zero + n0));
  if (o.clamp_lo) v = _mm512_max_epi32(v, o.lo);
  if (o.clamp_hi) v = _mm512_min_epi32(v, o.hi);
  const __m128i bytes = _mm512_cvtsepi32_epi8(v);
  x86::StoreBlockRow(bytes, count, dst + n0);
}

TFC_AVX512 inline __m512i Dot(__m512i acc, const uint8_t* x, const int8_t* block) {
  return _mm512_dpbusd_epi32(acc, Broadcast(x), _mm512_load_si512(block));
}

// One input row (a GEMV): per block row, the sum starts at folded_bias - 128 * row_sum and
// runs over the stored blocks in four chains (vpdpbusd's latency is 4 cycles on Zen 4),
// then one zmm is requantized and written. Single rounding only (WriteRow16).
template <bool kSparse>
TFC_AVX512 void Gemv(const Weights& w, const GemmProblem& p, const uint8_t* x,
                     int block_row_begin, int block_row_end) {
  // Everything read per row is loaded into locals first: the int8 stores could alias it.
  const int32_t* row_start = w.row_start.data();
  const int32_t* cols = w.col.data();
  const int32_t* row_sum = w.row_sum.data();
  const int8_t* blocks = w.blocks.get();
  const int32_t* folded_bias = p.folded_bias;
  const Output16 output = OutputOf(p.out);
  const int n = w.n;
  int8_t* y = p.output;
  for (int br = block_row_begin; br < block_row_end; ++br) {
    const int n0 = br * kBlockRows;
    const int first = row_start[br];
    const int end = row_start[br + 1];
    const int8_t* b = blocks + static_cast<int64_t>(first) * kBlockBytes;
    // Input of stored block j (unsigned, so the address needs no sign extension).
    auto in = [&](int j) {
      return x + static_cast<size_t>(static_cast<uint32_t>(kSparse ? cols[j] : j - first)) *
                     kBlockCols;
    };
    __m512i a0 = _mm512_sub_epi32(_mm512_loadu_si512(folded_bias + n0),
                                  _mm512_slli_epi32(_mm512_loadu_si512(row_sum + n0), 7));
    __m512i a1 = _mm512_setzero_si512(), a2 = a1, a3 = a1;
    int j = first;
    for (; j + 4 <= end; j += 4, b += 4 * kBlockBytes) {
      a0 = Dot(a0, in(j), b);
      a1 = Dot(a1, in(j + 1), b + kBlockBytes);
      a2 = Dot(a2, in(j + 2), b + 2 * kBlockBytes);
      a3 = Dot(a3, in(j + 3), b + 3 * kBlockBytes);
    }
    a0 = _mm512_add_epi32(a0, a1);
    a2 = _mm512_add_epi32(a2, a3);
    for (; j < end; ++j, b += kBlockBytes) a0 = Dot(a0, in(j), b);
    WriteRow16(_mm512_add_epi32(a0, a2), output, n0, std::min(kBlockRows, n - n0), y);
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
  if (p.m == 1 && p.out.tables != nullptr && !p.out.round_twice) {
    if (w.sparse) {
      Gemv<true>(w, p, x, block_row_begin, block_row_end);
    } else {
      Gemv<false>(w, p, x, block_row_begin, block_row_end);
    }
    return;
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
