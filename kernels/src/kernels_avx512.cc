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
#include "requant_avx512.h"
#include "row_input.h"

namespace tfc {
namespace {

constexpr int kMr = 8;  // input rows per tile: up to 16 accumulators, no spills

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

TFC_AVX512 inline __m512i Dot(__m512i acc, const uint8_t* x, const int8_t* block) {
  return _mm512_dpbusd_epi32(acc, Broadcast(x), _mm512_load_si512(block));
}

// One input row (a GEMV): per block row, the sum starts at -128 * row_sum and runs over the
// stored blocks in four chains (vpdpbusd's latency is 4 cycles on Zen 4), then one zmm is
// requantized (x86::Requantize16, which adds the folded bias) and written. Single rounding
// only.
template <bool kSparse>
TFC_AVX512 void Gemv(const Weights& w, const GemmProblem& p, const uint8_t* x,
                     int block_row_begin, int block_row_end) {
  // Everything read per row is loaded into locals first: the int8 stores could alias it.
  const int32_t* row_start = w.row_start.data();
  const int32_t* cols = w.col.data();
  const int32_t* row_sum = w.row_sum.data();
  const int8_t* blocks = w.blocks.get();
  const int32_t* folded_bias = p.folded_bias;
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
    __m512i a0 = _mm512_sub_epi32(_mm512_setzero_si512(),
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
    const x86::Columns16<false> k = x86::ColumnsOf<false>(p.out, folded_bias, n0);
    x86::StoreBlockRow(x86::Requantize16(_mm512_add_epi32(a0, a2), k),
                       std::min(kBlockRows, n - n0), y + n0);
  }
}

// Rows x[0..kRows) against kPairs adjacent block rows from br, then their outputs written to
// y (row r at y + r * output_stride). Two block rows (dense only: they read the same inputs)
// share every broadcast input, which halves the loads per vpdpbusd. Few rows keep kChains
// independent sums so that vpdpbusd's latency is hidden.
template <bool kSparse, bool kTwice, int kPairs, int kRows>
TFC_AVX512 void TileRows(const Weights& w, const GemmProblem& p, int br, const uint8_t* x,
                         int stride, int8_t* y) {
  constexpr int kChains = kPairs * kRows == 1 ? 4 : kPairs * kRows < 4 ? 2 : 1;
  __m512i acc[kChains][kPairs][kRows];
  const int8_t* b[kPairs];
  for (int q = 0; q < kPairs; ++q) {
    const __m512i sum = _mm512_loadu_si512(w.row_sum.data() + (br + q) * kBlockRows);
    const __m512i start = _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_slli_epi32(sum, 7));
    for (int r = 0; r < kRows; ++r) {
      acc[0][q][r] = start;
      for (int c = 1; c < kChains; ++c) acc[c][q][r] = _mm512_setzero_si512();
    }
    b[q] = RowOf(w, br + q).blocks;
  }
  const BlockRow row = RowOf(w, br);
  int j = 0;
  for (; j + kChains <= row.count; j += kChains) {
    for (int c = 0; c < kChains; ++c) {
      const int k0 = (kSparse ? row.cols[j + c] : j + c) * kBlockCols;
      __m512i wv[kPairs];
      for (int q = 0; q < kPairs; ++q) {
        wv[q] = _mm512_load_si512(b[q] + static_cast<int64_t>(j + c) * kBlockBytes);
      }
      for (int r = 0; r < kRows; ++r) {
        const __m512i in = Broadcast(x + r * stride + k0);
        for (int q = 0; q < kPairs; ++q) acc[c][q][r] = _mm512_dpbusd_epi32(acc[c][q][r], in, wv[q]);
      }
    }
  }
  for (; j < row.count; ++j) {
    const int k0 = (kSparse ? row.cols[j] : j) * kBlockCols;
    for (int q = 0; q < kPairs; ++q) {
      const __m512i wv = _mm512_load_si512(b[q] + static_cast<int64_t>(j) * kBlockBytes);
      for (int r = 0; r < kRows; ++r) {
        acc[0][q][r] = _mm512_dpbusd_epi32(acc[0][q][r], Broadcast(x + r * stride + k0), wv);
      }
    }
  }
  for (int q = 0; q < kPairs; ++q) {
    const int n0 = (br + q) * kBlockRows;
    const int count = std::min(kBlockRows, w.n - n0);
    for (int r = 0; r < kRows; ++r) {
      for (int c = 1; c < kChains; ++c) acc[0][q][r] = _mm512_add_epi32(acc[0][q][r], acc[c][q][r]);
    }
    if (p.out.tables != nullptr) {
      const x86::Columns16<kTwice> k = x86::ColumnsOf<kTwice>(p.out, p.folded_bias, n0);
      for (int r = 0; r < kRows; ++r) {
        x86::StoreBlockRow(x86::Requantize16(acc[0][q][r], k), count,
                           y + static_cast<int64_t>(r) * p.output_stride + n0);
      }
    } else {
      alignas(64) int32_t sums[kBlockRows];
      for (int r = 0; r < kRows; ++r) {
        _mm512_store_si512(sums, acc[0][q][r]);
        WriteRow(sums, p.folded_bias + n0, p.out, n0, count,
                 y + static_cast<int64_t>(r) * p.output_stride);
      }
    }
  }
}

using TileFn = void (*)(const Weights&, const GemmProblem&, int, const uint8_t*, int, int,
                        int8_t*);

template <bool kSparse, bool kTwice, int kPairs>
TFC_AVX512 void Tile(const Weights& w, const GemmProblem& p, int br, const uint8_t* x, int stride,
                     int rows, int8_t* y) {
  switch (rows) {
    case 8: return TileRows<kSparse, kTwice, kPairs, 8>(w, p, br, x, stride, y);
    case 7: return TileRows<kSparse, kTwice, kPairs, 7>(w, p, br, x, stride, y);
    case 6: return TileRows<kSparse, kTwice, kPairs, 6>(w, p, br, x, stride, y);
    case 5: return TileRows<kSparse, kTwice, kPairs, 5>(w, p, br, x, stride, y);
    case 4: return TileRows<kSparse, kTwice, kPairs, 4>(w, p, br, x, stride, y);
    case 3: return TileRows<kSparse, kTwice, kPairs, 3>(w, p, br, x, stride, y);
    case 2: return TileRows<kSparse, kTwice, kPairs, 2>(w, p, br, x, stride, y);
    default: return TileRows<kSparse, kTwice, kPairs, 1>(w, p, br, x, stride, y);
  }
}

template <bool kTwice>
TileFn SingleTile(bool sparse) {
  return sparse ? Tile<true, kTwice, 1> : Tile<false, kTwice, 1>;
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
  const bool twice = p.out.round_twice;
  const TileFn single = twice ? SingleTile<true>(w.sparse) : SingleTile<false>(w.sparse);
  const TileFn paired = twice ? Tile<false, true, 2> : Tile<false, false, 2>;
  for (int br = block_row_begin; br < block_row_end;) {
    const bool pair = !w.sparse && br + 1 < block_row_end;
    for (int m0 = 0; m0 < p.m; m0 += kMr) {
      (pair ? paired : single)(w, p, br, x + static_cast<size_t>(m0) * padded_k, padded_k,
                               std::min(kMr, p.m - m0),
                               p.output + static_cast<int64_t>(m0) * p.output_stride);
    }
    br += pair ? 2 : 1;
  }
}

}  // namespace tfc

#endif  // defined(__x86_64__)
