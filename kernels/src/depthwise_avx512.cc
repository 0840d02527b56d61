// DEPTHWISE_CONV_2D with AVX-512 VNNI.
//
// Each input row a line needs is copied once into a padded row: pad_left pixels of the
// input zero point, the row, zero points up to the widest tap, every pixel holding all output
// channels (channel o: input channel o / multiplier) in padded groups of 16, each value
// sign-extended to an int32 lane. A zero point in the input contributes nothing to TFLite's
// sum of (x + input_offset) * w, so every tap can be summed without bounds checks as x * w,
// with input_offset * sum(w) folded into the bias (PackDepthwise). A row outside the input
// is a row of zero points. vpdpwssd multiplies the low int16 of each lane (x) by the weight
// stored as the pair (w, 0), so one instruction per tap adds 16 channels' products.
#if defined(__x86_64__)

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "block_store_x86.h"
#include "depthwise.h"
#include "requant_avx512.h"

namespace tfc {
namespace {

constexpr int kPixels = 8;  // output pixels accumulated at once: independent sums

struct PaddedRows {
  std::vector<int32_t> rows;  // [kernel_h slots][width][padded channels]
  std::vector<int64_t> tags;  // batch * in_h + iy held by each slot, -1: none
  std::vector<int32_t> outside;  // [width][padded]: the zero point everywhere
};

// The first 64-byte boundary at or after `p`: whole zmm loads then never split cache lines.
int32_t* Aligned(int32_t* p) {
  const uintptr_t address = reinterpret_cast<uintptr_t>(p);
  return p + ((64 - address % 64) % 64) / sizeof(int32_t);
}

// Pixels a padded row holds: every tap of every output pixel, and the whole input row.
int PaddedWidth(const DepthwiseProblem& p) {
  const int taps = (p.out_w - 1) * p.stride_w + (p.kernel_w - 1) * p.dilation_w + 1;
  return std::max(taps, p.pad_left + p.in_w);
}

TFC_AVX512 void FillRow(const DepthwiseProblem& p, const int8_t* src, int width, int padded,
                        int32_t* dst) {
  const int32_t zero_point = -p.input_offset;
  std::fill(dst, dst + static_cast<int64_t>(width) * padded, zero_point);
  const int cin = p.in_channels, dm = p.depth_multiplier;
  for (int x = 0; x < p.in_w; ++x, src += cin) {
    int32_t* d = dst + static_cast<int64_t>(x + p.pad_left) * padded;
    if (dm != 1) {
      for (int o = 0; o < cin * dm; ++o) d[o] = src[o / dm];
      continue;
    }
    int c = 0;
    for (; c + 8 <= cin; c += 8) {  // AVX2: the emulated test build's SIMDe lacks vpmovsxbd
      const __m128i bytes = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(src + c));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + c), _mm256_cvtepi8_epi32(bytes));
    }
    for (; c < cin; ++c) d[c] = src[c];
  }
}

// kN output pixels from ox of the 16 channels from o0, written to dst (the line).
// The requantization constants are loaded after the sums: held across them, they would push
// the sums out of registers.
template <bool kTwice, int kN>
TFC_AVX512 inline void Pixels(const DepthwiseProblem& p, const OutputStage& out,
                              const int32_t* const* rows, int padded, int ox, int o0,
                              int8_t* dst) {
  const DepthwisePacked& packed = *p.packed;
  const int32_t* filter = packed.filter_pairs.data();
  __m512i acc[kN];
  for (int n = 0; n < kN; ++n) acc[n] = _mm512_setzero_si512();
  const int64_t step = static_cast<int64_t>(p.stride_w) * padded;
  for (int ky = 0; ky < p.kernel_h; ++ky) {
    const int32_t* row = rows[ky] + static_cast<int64_t>(ox) * step + o0;
    const int32_t* w = filter + static_cast<int64_t>(ky) * p.kernel_w * padded + o0;
    for (int kx = 0; kx < p.kernel_w; ++kx) {
      const __m512i wv = _mm512_loadu_si512(w + static_cast<int64_t>(kx) * padded);
      const int32_t* in = row + static_cast<int64_t>(kx) * p.dilation_w * padded;
      for (int n = 0; n < kN; ++n) {
        acc[n] = _mm512_dpwssd_epi32(acc[n], _mm512_loadu_si512(in + n * step), wv);
      }
    }
  }
  const int cout = p.channels();
  const int count = std::min(kLanes, cout - o0);
  const x86::Columns16<kTwice> k = x86::ColumnsOf<kTwice>(out, packed.folded_bias.data(), o0);
  for (int n = 0; n < kN; ++n) {
    x86::StoreBlockRow(x86::Requantize16(acc[n], k), count,
                       dst + static_cast<int64_t>(ox + n) * cout + o0);
  }
}

template <bool kTwice>
TFC_AVX512 void Lines(const DepthwiseProblem& p, int line_begin, int line_end) {
  const int cout = p.channels();
  const int padded = (cout + kLanes - 1) / kLanes * kLanes;
  const int width = PaddedWidth(p);
  const int64_t row_size = static_cast<int64_t>(width) * padded;
  OutputStage out = p.out;
  out.tables = &p.packed->tables;
  thread_local PaddedRows s;
  s.rows.resize(p.kernel_h * row_size + kLanes);  // + kLanes: room to align to 64 bytes
  s.tags.assign(p.kernel_h, -1);
  s.outside.assign(row_size + kLanes, -p.input_offset);
  const int32_t* rows[kMaxKernelH];
  for (int line = line_begin; line < line_end; ++line) {
    const int b = line / p.out_h;
    const int oy = line % p.out_h;
    for (int ky = 0; ky < p.kernel_h; ++ky) {
      const int iy = oy * p.stride_h - p.pad_top + ky * p.dilation_h;
      rows[ky] = Aligned(s.outside.data());
      if (iy < 0 || iy >= p.in_h) continue;
      // Distinct for the taps of one line: their iy / dilation are consecutive.
      const int slot = (iy / p.dilation_h) % p.kernel_h;
      int32_t* row = Aligned(s.rows.data()) + slot * row_size;
      const int64_t tag = static_cast<int64_t>(b) * p.in_h + iy;
      if (s.tags[slot] != tag) {
        FillRow(p, p.input + tag * p.in_w * p.in_channels, width, padded, row);
        s.tags[slot] = tag;
      }
      rows[ky] = row;
    }
    int8_t* dst = p.output + static_cast<int64_t>(line) * p.out_w * cout;
    for (int o0 = 0; o0 < cout; o0 += kLanes) {
      int ox = 0;
      for (; ox + kPixels <= p.out_w; ox += kPixels) {
        Pixels<kTwice, kPixels>(p, out, rows, padded, ox, o0, dst);
      }
      for (; ox + 4 <= p.out_w; ox += 4) Pixels<kTwice, 4>(p, out, rows, padded, ox, o0, dst);
      for (; ox + 2 <= p.out_w; ox += 2) Pixels<kTwice, 2>(p, out, rows, padded, ox, o0, dst);
      if (ox < p.out_w) Pixels<kTwice, 1>(p, out, rows, padded, ox, o0, dst);
    }
  }
}

}  // namespace

void DepthwiseAvx512Vnni(const DepthwiseProblem& p, int line_begin, int line_end) {
  if (p.out.round_twice) {
    Lines<true>(p, line_begin, line_end);
  } else {
    Lines<false>(p, line_begin, line_end);
  }
}

}  // namespace tfc

#endif  // defined(__x86_64__)
