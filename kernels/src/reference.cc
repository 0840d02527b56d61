// Ground truth: TFLite's int8 arithmetic in plain loops over the unpacked weights.
#include <algorithm>
#include <cmath>

#include "kernels.h"

namespace tfc {

void QuantizeMultiplier(double real_multiplier, int32_t* multiplier, int32_t* shift) {
  if (real_multiplier == 0.0) {
    *multiplier = 0;
    *shift = 0;
    return;
  }
  int exponent = 0;
  const double fraction = std::frexp(real_multiplier, &exponent);
  int64_t fixed = static_cast<int64_t>(std::round(fraction * static_cast<double>(1LL << 31)));
  if (fixed == (1LL << 31)) {
    fixed /= 2;
    ++exponent;
  }
  if (exponent < -31) {
    exponent = 0;
    fixed = 0;
  }
  if (exponent > 30) {
    exponent = 30;
    fixed = (1LL << 31) - 1;
  }
  *multiplier = static_cast<int32_t>(fixed);
  *shift = exponent;
}

void WriteRow(const int32_t* acc, const int32_t* folded_bias, const OutputStage& out, int n0,
              int count, int8_t* dst) {
  for (int j = 0; j < count; ++j) {
    const int n = n0 + j;
    const int32_t total = static_cast<int32_t>(static_cast<uint32_t>(acc[j]) +
                                               static_cast<uint32_t>(folded_bias[j]));
    int32_t v = out.round_twice ? RequantizeTwice(total, out.multiplier[n], out.shift[n])
                                : Requantize(total, out.multiplier[n], out.shift[n]);
    v = std::min(std::max(v + out.zero_point, out.act_min), out.act_max);
    dst[n] = static_cast<int8_t>(v);
  }
}

void BuildRequantTables(const OutputStage& out, int n, RequantTables* t) {
  const int padded = (n + kBlockRows - 1) / kBlockRows * kBlockRows;
  t->add.assign(padded, 0);
  t->sub.assign(padded, 0);
  t->right64.assign(padded, 0);
  t->left.assign(padded, 0);
  t->right.assign(padded, 0);
  t->mask.assign(padded, 0);
  t->multiplier.assign(padded, 0);
  t->add16.assign(padded, 0);
  t->right16.assign(padded, 0);
  t->zero16.assign(padded, 0);
  for (int c = 0; c < padded; ++c) {
    const int32_t shift = c < n ? out.shift[c] : 0;
    const int s = 31 - shift;
    const int lane = c % 8;
    const int slot = c - lane + (lane % 2 == 0 ? lane / 2 : 4 + lane / 2);
    t->add[slot] = (int64_t{1} << (s - 1)) + (int64_t{1} << 62);
    t->sub[slot] = (int64_t{1} << 62) >> s;
    t->right64[slot] = s;
    t->left[c] = shift > 0 ? shift : 0;
    t->right[c] = shift > 0 ? 0 : -shift;
    t->mask[c] = static_cast<int32_t>((int64_t{1} << t->right[c]) - 1);
    t->multiplier[c] = c < n ? out.multiplier[c] : 0;
    const int slot16 = c - c % 16 + (c % 2) * 8 + (c % 16) / 2;
    t->add16[slot16] = t->add[slot];
    t->right16[slot16] = s;
    t->zero16[c] = static_cast<int32_t>(static_cast<uint32_t>(out.zero_point) -
                                        static_cast<uint32_t>(t->sub[slot]));
  }
}

void GemmReference(const Weights& w, const GemmProblem& p, int block_row_begin,
                   int block_row_end) {
  const int n_begin = block_row_begin * kBlockRows;
  const int n_end = std::min(w.n, block_row_end * kBlockRows);
  for (int m = 0; m < p.m; ++m) {
    const int8_t* x = p.input + static_cast<int64_t>(m) * p.input_stride;
    int8_t* y = p.output + static_cast<int64_t>(m) * p.output_stride;
    for (int n = n_begin; n < n_end; ++n) {
      const int8_t* wn = w.raw + static_cast<int64_t>(n) * w.k;
      int32_t acc = 0;
      for (int k = 0; k < w.k; ++k) acc += (x[k] + p.input_offset) * wn[k];
      if (p.out.bias != nullptr) acc += p.out.bias[n];
      int32_t v = p.out.round_twice ? RequantizeTwice(acc, p.out.multiplier[n], p.out.shift[n])
                                    : Requantize(acc, p.out.multiplier[n], p.out.shift[n]);
      v += p.out.zero_point;
      y[n] = static_cast<int8_t>(std::min(std::max(v, p.out.act_min), p.out.act_max));
    }
  }
}

}  // namespace tfc
