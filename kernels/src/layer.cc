#include "layer.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

namespace tfc {
namespace {

// Rows of im2col output processed per step: bounds the scratch buffer.
constexpr int kIm2ColRows = 64;

// Below this many (row, stored block) products, about 10 us on one core, a layer runs on
// the calling thread: waking the pool costs ~4 us (2-core AMD EPYC Zen 4), more than it
// saves on a 1-2 us GEMV.
constexpr int64_t kMinParallelWork = int64_t{1} << 14;

}  // namespace

Layer::Layer(bool is_conv, const int8_t* weights, int n, int k, const int32_t* bias,
             const std::vector<double>& real_multipliers, int32_t input_zero_point,
             int32_t output_zero_point, int32_t act_min, int32_t act_max, ConvGeometry conv)
    : is_conv_(is_conv), input_zero_point_(input_zero_point), conv_(conv) {
  weights_.n = n;
  weights_.k = k;
  weights_.raw = weights;
  if (bias != nullptr) bias_.assign(bias, bias + n);
  multiplier_.resize(n);
  shift_.resize(n);
  for (int o = 0; o < n; ++o) {
    const double real = real_multipliers.size() == 1 ? real_multipliers[0] : real_multipliers[o];
    QuantizeMultiplier(real, &multiplier_[o], &shift_[o]);
  }
  out_.bias = bias_.empty() ? nullptr : bias_.data();
  out_.multiplier = multiplier_.data();
  out_.shift = shift_.data();
  out_.zero_point = output_zero_point;
  out_.act_min = act_min;
  out_.act_max = act_max;
  out_.round_twice = is_conv;
}

void Layer::SelectKernel(KernelChoice choice, Isa isa) {
  isa_ = isa;
  block_density_ = BlockDensity(weights_.raw, weights_.n, weights_.k);
  if (choice == KernelChoice::kReference) {
    kernel_ = GemmReference;
    return;
  }
  Pack(weights_, LayoutFor(isa), RunsSparse(choice, block_density_));
  folded_bias_ = FoldBias(weights_, out_.bias, -input_zero_point_);
  kernel_ = KernelFor(isa);
  if (isa == Isa::kAvx2 || isa == Isa::kAvx512Vnni) {
    BuildRequantTables(out_, weights_.n, &tables_);
    out_.tables = &tables_;
  }
}

std::vector<int> Layer::Resize(const std::vector<int>& input_shape, bool keep_num_dims) {
  if (!is_conv_) {
    int64_t elements = 1;
    for (int d : input_shape) elements *= d;
    // As TFLite: whole rows of k values, any values left over unused.
    rows_ = static_cast<int>(elements / weights_.k);
    if (keep_num_dims) {
      if (input_shape.empty() || input_shape.back() != weights_.k) return {};
      std::vector<int> shape = input_shape;
      shape.back() = weights_.n;
      return shape;
    }
    return {rows_, weights_.n};
  }
  if (input_shape.size() != 4 || input_shape[3] != conv_.in_channels) return {};
  ConvGeometry& g = conv_;
  g.batch = input_shape[0];
  g.in_h = input_shape[1];
  g.in_w = input_shape[2];
  g.out_h = ConvOutSize(g.same_padding, g.in_h, g.kernel_h, g.stride_h, g.dilation_h);
  g.out_w = ConvOutSize(g.same_padding, g.in_w, g.kernel_w, g.stride_w, g.dilation_w);
  if (g.out_h < 0 || g.out_w < 0) return {};  // an empty output (0) is valid, as in TFLite
  g.pad_top = ConvPadBefore(g.same_padding, g.in_h, g.out_h, g.kernel_h, g.stride_h, g.dilation_h);
  g.pad_left = ConvPadBefore(g.same_padding, g.in_w, g.out_w, g.kernel_w, g.stride_w, g.dilation_w);
  rows_ = g.batch * g.out_h * g.out_w;
  return {g.batch, g.out_h, g.out_w, weights_.n};
}

bool Layer::DirectRows() const {
  return !is_conv_ || (conv_.kernel_h == 1 && conv_.kernel_w == 1 && conv_.stride_h == 1 &&
                       conv_.stride_w == 1);
}

void Layer::Im2Col(const int8_t* input, int row_begin, int row_end, int8_t* dst) const {
  const ConvGeometry& g = conv_;
  const int8_t pad_value = static_cast<int8_t>(input_zero_point_);
  const int c = g.in_channels;
  // With no dilation along x, a filter row reads kernel_w * c contiguous bytes.
  const int span = g.dilation_w == 1 ? g.kernel_w : 1;
  for (int row = row_begin; row < row_end; ++row) {
    const int b = row / (g.out_h * g.out_w);
    const int oy = (row / g.out_w) % g.out_h;
    const int ox = row % g.out_w;
    for (int ky = 0; ky < g.kernel_h; ++ky) {
      const int iy = oy * g.stride_h - g.pad_top + ky * g.dilation_h;
      const int8_t* line = input + (static_cast<int64_t>(b) * g.in_h + iy) * g.in_w * c;
      for (int kx = 0; kx < g.kernel_w;) {
        const int ix = ox * g.stride_w - g.pad_left + kx * g.dilation_w;
        if (iy < 0 || iy >= g.in_h || ix < 0 || ix >= g.in_w) {
          std::memset(dst, pad_value, c);
          dst += c;
          ++kx;
        } else if (kx % span == 0 && ix + span <= g.in_w) {
          std::memcpy(dst, line + static_cast<int64_t>(ix) * c, static_cast<size_t>(span) * c);
          dst += span * c;
          kx += span;
        } else {
          std::memcpy(dst, line + static_cast<int64_t>(ix) * c, c);
          dst += c;
          ++kx;
        }
      }
    }
  }
}

void Layer::RunRows(const int8_t* input, int8_t* output, int row_begin, int row_end,
                    int block_row_begin, int block_row_end) const {
  GemmProblem p;
  p.input_offset = -input_zero_point_;
  p.input_stride = weights_.k;
  p.output_stride = weights_.n;
  p.out = out_;
  p.folded_bias = folded_bias_.empty() ? nullptr : folded_bias_.data();
  if (DirectRows()) {
    p.m = row_end - row_begin;
    p.input = input + static_cast<int64_t>(row_begin) * weights_.k;
    p.output = output + static_cast<int64_t>(row_begin) * weights_.n;
    kernel_(weights_, p, block_row_begin, block_row_end);
    return;
  }
  thread_local std::vector<int8_t> columns;
  columns.resize(static_cast<size_t>(kIm2ColRows) * weights_.k);
  for (int r0 = row_begin; r0 < row_end; r0 += kIm2ColRows) {
    const int r1 = std::min(row_end, r0 + kIm2ColRows);
    Im2Col(input, r0, r1, columns.data());
    p.m = r1 - r0;
    p.input = columns.data();
    p.output = output + static_cast<int64_t>(r0) * weights_.n;
    kernel_(weights_, p, block_row_begin, block_row_end);
  }
}

void Layer::Run(const int8_t* input, int8_t* output, ThreadPool& pool) const {
  const int block_rows = (weights_.n + kBlockRows - 1) / kBlockRows;
  const int64_t blocks = weights_.row_start.empty()
                            ? int64_t{block_rows} * ((weights_.k + kBlockCols - 1) / kBlockCols)
                            : weights_.row_start.back();
  if (pool.threads() == 1 || blocks * rows_ < kMinParallelWork) {
    RunRows(input, output, 0, rows_, 0, block_rows);
  } else if (rows_ < 4 * pool.threads()) {
    // Few rows (FC at small batch): split the outputs.
    pool.ParallelFor(block_rows,
                     [&](int begin, int end) { RunRows(input, output, 0, rows_, begin, end); });
  } else {
    pool.ParallelFor(rows_, [&](int begin, int end) {
      RunRows(input, output, begin, end, 0, block_rows);
    });
  }
}

std::string Layer::Describe() const {
  char text[160];
  std::snprintf(text, sizeof(text), "%s %dx%d block density %.2f -> %s %s",
                is_conv_ ? "CONV_2D" : "FULLY_CONNECTED", weights_.n, weights_.k, block_density_,
                reference() ? "reference" : (sparse() ? "sparse" : "dense"),
                reference() ? "" : IsaName(isa_));
  return text;
}

}  // namespace tfc
