#include "depthwise.h"

#include <algorithm>
#include <vector>

namespace tfc {
namespace {

int32_t Finish(int32_t acc, const OutputStage& out, int o) {
  int32_t v = out.round_twice ? RequantizeTwice(acc, out.multiplier[o], out.shift[o])
                              : Requantize(acc, out.multiplier[o], out.shift[o]);
  return std::min(std::max(v + out.zero_point, out.act_min), out.act_max);
}

// What the fast kernel keeps per thread: accumulators of one output line as
// [group][x][16], and the input rows it read, expanded to one int16 value (input plus
// offset) per output channel: row[x][o] = in[x][o / multiplier] + offset, channels
// padded to whole groups with zeros.
struct Scratch {
  std::vector<int32_t> acc;
  std::vector<int16_t> rows;  // [kernel_h slots][in_w][padded channels]
  std::vector<int64_t> tags;  // batch * in_h + iy held by each slot, -1: none
};

// One input row, expanded (see Scratch).
inline __attribute__((always_inline)) void ExpandRow(const DepthwiseProblem& p, const int8_t* src,
                                                     int padded, int16_t* __restrict dst) {
  const int cin = p.in_channels, dm = p.depth_multiplier, cout = p.channels();
  const int16_t offset = static_cast<int16_t>(p.input_offset);
  for (int x = 0; x < p.in_w; ++x, src += cin, dst += padded) {
    if (dm == 1) {
      for (int c = 0; c < cin; ++c) dst[c] = static_cast<int16_t>(src[c] + offset);
    } else {
      for (int o = 0; o < cout; ++o) dst[o] = static_cast<int16_t>(src[o / dm] + offset);
    }
    for (int o = cout; o < padded; ++o) dst[o] = 0;
  }
}

// The fast kernel's body, inlined into one function per ISA so that the compiler
// vectorizes the 16-channel loops for each. `Write` requantizes one group of a line.
template <typename Write>
inline __attribute__((always_inline)) void DepthwiseLines(const DepthwiseProblem& p,
                                                           int line_begin, int line_end,
                                                           Write write) {
  const int cout = p.channels();
  const int groups = (cout + kLanes - 1) / kLanes;
  const int padded = groups * kLanes;
  const DepthwisePacked& packed = *p.packed;
  thread_local Scratch s;
  s.acc.resize(static_cast<size_t>(groups) * p.out_w * kLanes);
  s.rows.resize(static_cast<size_t>(p.kernel_h) * p.in_w * padded);
  s.tags.assign(p.kernel_h, -1);
  const int16_t* rows[kMaxKernelH];
  for (int line = line_begin; line < line_end; ++line) {
    const int b = line / p.out_h;
    const int oy = line % p.out_h;
    int32_t* __restrict acc = s.acc.data();
    // The input rows of this line's taps (null: outside the input), expanded once.
    for (int ky = 0; ky < p.kernel_h; ++ky) {
      const int iy = oy * p.stride_h - p.pad_top + ky * p.dilation_h;
      rows[ky] = nullptr;
      if (iy < 0 || iy >= p.in_h) continue;
      // Distinct for the taps of one line: their iy / dilation are consecutive.
      const int slot = (iy / p.dilation_h) % p.kernel_h;
      int16_t* row = s.rows.data() + static_cast<int64_t>(slot) * p.in_w * padded;
      const int64_t tag = static_cast<int64_t>(b) * p.in_h + iy;
      if (s.tags[slot] != tag) {
        ExpandRow(p, p.input + tag * p.in_w * p.in_channels, padded, row);
        s.tags[slot] = tag;
      }
      rows[ky] = row;
    }
    // Every tap of one output pixel and group into 16 accumulators held in registers.
    for (int g = 0; g < groups; ++g) {
      int32_t* __restrict ag = acc + static_cast<int64_t>(g) * p.out_w * kLanes;
      for (int ox = 0; ox < p.out_w; ++ox) {
        int32_t sum[kLanes] = {};
        const int ix0 = ox * p.stride_w - p.pad_left;
        for (int ky = 0; ky < p.kernel_h; ++ky) {
          if (rows[ky] == nullptr) continue;
          const int16_t* __restrict w =
              packed.filter.data() + ky * p.kernel_w * padded + g * kLanes;
          const int16_t* __restrict line_in = rows[ky] + g * kLanes;
          for (int kx = 0; kx < p.kernel_w; ++kx) {
            const int ix = ix0 + kx * p.dilation_w;
            if (ix < 0 || ix >= p.in_w) continue;
            const int16_t* __restrict x = line_in + static_cast<int64_t>(ix) * padded;
            const int16_t* __restrict wk = w + kx * padded;
            for (int j = 0; j < kLanes; ++j) sum[j] += x[j] * wk[j];
          }
        }
        for (int j = 0; j < kLanes; ++j) ag[ox * kLanes + j] = sum[j];
      }
    }
    int8_t* dst = p.output + static_cast<int64_t>(line) * p.out_w * cout;
    for (int g = 0; g < groups; ++g)
      write(acc + static_cast<int64_t>(g) * p.out_w * kLanes, packed.bias.data() + g * kLanes,
            g * kLanes, std::min(kLanes, cout - g * kLanes), dst);
  }
}

// Scalar output stage of one group of a line.
struct WriteScalar {
  const DepthwiseProblem& p;
  void operator()(const int32_t* acc, const int32_t* bias, int o0, int count, int8_t* dst) const {
    const int cout = p.channels();
    for (int x = 0; x < p.out_w; ++x)
      for (int j = 0; j < count; ++j)
        dst[x * cout + o0 + j] =
            static_cast<int8_t>(Finish(acc[x * kLanes + j] + bias[j], p.out, o0 + j));
  }
};

void DepthwisePortable(const DepthwiseProblem& p, int line_begin, int line_end) {
  DepthwiseLines(p, line_begin, line_end, WriteScalar{p});
}

#if defined(__x86_64__)
// AVX2 output stage (WriteRowsAvx2); needs p.out.tables.
struct WriteAvx2 {
  const DepthwiseProblem& p;
  void operator()(const int32_t* acc, const int32_t* bias, int o0, int count, int8_t* dst) const {
    OutputStage out = p.out;
    out.tables = &p.packed->tables;
    WriteRowsAvx2(acc, p.out_w, bias, out, o0, count, dst, p.channels());
  }
};

__attribute__((target("avx2"))) void DepthwiseAvx2(const DepthwiseProblem& p, int line_begin,
                                                   int line_end) {
  DepthwiseLines(p, line_begin, line_end, WriteAvx2{p});
}

#endif

}  // namespace

void PackDepthwise(const DepthwiseProblem& p, DepthwisePacked* packed) {
  const int cout = p.channels();
  const int padded = (cout + kLanes - 1) / kLanes * kLanes;
  const int taps = p.kernel_h * p.kernel_w;
  packed->filter.assign(static_cast<size_t>(taps) * padded, 0);
  packed->bias.assign(padded, 0);
  for (int t = 0; t < taps; ++t)
    for (int o = 0; o < cout; ++o) packed->filter[t * padded + o] = p.filter[t * cout + o];
  for (int o = 0; o < cout; ++o) packed->bias[o] = p.out.bias != nullptr ? p.out.bias[o] : 0;
  BuildRequantTables(p.out, cout, &packed->tables);
  packed->filter_pairs.assign(packed->filter.size(), 0);
  packed->folded_bias = packed->bias;
  for (int t = 0; t < taps; ++t) {
    for (int o = 0; o < cout; ++o) {
      const int16_t w = packed->filter[t * padded + o];
      packed->filter_pairs[t * padded + o] = static_cast<uint16_t>(w);
      packed->folded_bias[o] += p.input_offset * w;
    }
  }
}

void DepthwiseReference(const DepthwiseProblem& p, int line_begin, int line_end) {
  const int cout = p.channels();
  for (int line = line_begin; line < line_end; ++line) {
    const int b = line / p.out_h;
    const int oy = line % p.out_h;
    for (int ox = 0; ox < p.out_w; ++ox) {
      for (int c = 0; c < p.in_channels; ++c) {
        for (int m = 0; m < p.depth_multiplier; ++m) {
          const int o = c * p.depth_multiplier + m;
          int32_t acc = 0;
          for (int ky = 0; ky < p.kernel_h; ++ky) {
            for (int kx = 0; kx < p.kernel_w; ++kx) {
              const int iy = oy * p.stride_h - p.pad_top + ky * p.dilation_h;
              const int ix = ox * p.stride_w - p.pad_left + kx * p.dilation_w;
              if (iy < 0 || iy >= p.in_h || ix < 0 || ix >= p.in_w) continue;
              const int32_t x =
                  p.input[((static_cast<int64_t>(b) * p.in_h + iy) * p.in_w + ix) * p.in_channels +
                          c];
              const int32_t w = p.filter[(static_cast<int64_t>(ky) * p.kernel_w + kx) * cout + o];
              acc += (x + p.input_offset) * w;
            }
          }
          if (p.out.bias != nullptr) acc += p.out.bias[o];
          p.output[((static_cast<int64_t>(b) * p.out_h + oy) * p.out_w + ox) * cout + o] =
              static_cast<int8_t>(Finish(acc, p.out, o));
        }
      }
    }
  }
}

Isa DepthwiseIsa(Isa isa) {
#if defined(__x86_64__)
  if (isa == Isa::kAvx2 || isa == Isa::kAvx512Vnni) return isa;
#endif
  return Isa::kPortable;
}

DepthwiseFn DepthwiseKernelFor(Isa isa) {
  switch (DepthwiseIsa(isa)) {
#if defined(__x86_64__)
    case Isa::kAvx2: return DepthwiseAvx2;
    case Isa::kAvx512Vnni: return DepthwiseAvx512Vnni;
#endif
    default: return DepthwisePortable;
  }
}

}  // namespace tfc
