// One claimed TFLite node (FULLY_CONNECTED or CONV_2D) as a GEMM over packed weights.
//
// Framework-free: the delegate fills a Layer from the TFLite tensors, the kernel
// tests build one directly.
#ifndef TFCOMPRESS_KERNELS_LAYER_H_
#define TFCOMPRESS_KERNELS_LAYER_H_

#include <string>
#include <vector>

#include "constants.h"
#include "kernels.h"
#include "node_runner.h"
#include "thread_pool.h"

namespace tfc {

enum class KernelChoice { kAuto, kDense, kSparse, kReference };

// Whether `choice` runs a layer whose weights have this block density block-sparse.
inline bool RunsSparse(KernelChoice choice, double block_density) {
  return choice == KernelChoice::kSparse ||
         (choice == KernelChoice::kAuto && block_density <= kSparseMaxDensity);
}

struct ConvGeometry {
  int kernel_h = 1, kernel_w = 1, in_channels = 0;
  int stride_h = 1, stride_w = 1, dilation_h = 1, dilation_w = 1;
  bool same_padding = false;
  // Set by Layer::Resize from the input shape.
  int batch = 0, in_h = 0, in_w = 0, out_h = 0, out_w = 0, pad_top = 0, pad_left = 0;
};

// Output size and padding before along one axis, as TFLite computes them.
inline int ConvOutSize(bool same, int in, int filter, int stride, int dilation) {
  const int effective = (filter - 1) * dilation + 1;
  return same ? (in + stride - 1) / stride : (in + stride - effective) / stride;
}

inline int ConvPadBefore(bool same, int in, int out, int filter, int stride, int dilation) {
  if (!same) return 0;
  const int effective = (filter - 1) * dilation + 1;
  const int total = (out - 1) * stride + effective - in;
  return total > 0 ? total / 2 : 0;
}

class Layer : public NodeRunner {
 public:
  // weights: [n][k] int8 (a conv filter [cout][kh][kw][cin] is [cout][kh*kw*cin]).
  // real_multipliers: input_scale * filter_scale[c] / output_scale per output (or one).
  Layer(bool is_conv, const int8_t* weights, int n, int k, const int32_t* bias,
        const std::vector<double>& real_multipliers, int32_t input_zero_point,
        int32_t output_zero_point, int32_t act_min, int32_t act_max, ConvGeometry conv);

  // Picks and prepares the kernel: packs weights unless the reference kernel is used.
  void SelectKernel(KernelChoice choice, Isa isa);

  // Sets the number of rows from the input shape (FC: all rows of k values; conv:
  // NHWC batch/height/width), possibly 0. Returns the output shape, or empty when the
  // shape is invalid.
  std::vector<int> Resize(const std::vector<int>& input_shape, bool keep_num_dims) override;
  int rows() const override { return rows_; }

  void Run(const int8_t* input, int8_t* output, ThreadPool& pool) const override;

  int n() const { return weights_.n; }
  int k() const { return weights_.k; }
  bool is_conv() const { return is_conv_; }
  bool sparse() const override { return kernel_ != GemmReference && weights_.sparse; }
  bool reference() const override { return kernel_ == GemmReference; }
  double block_density() const { return block_density_; }
  std::string Describe() const override;

 private:
  void RunRows(const int8_t* input, int8_t* output, int row_begin, int row_end,
               int block_row_begin, int block_row_end) const;
  void Im2Col(const int8_t* input, int row_begin, int row_end, int8_t* dst) const;
  bool DirectRows() const;  // conv whose input rows are already the GEMM rows

  bool is_conv_;
  Weights weights_;
  std::vector<int32_t> bias_;
  std::vector<int32_t> multiplier_, shift_;
  std::vector<int32_t> folded_bias_;
  RequantTables tables_;
  int32_t input_zero_point_;
  OutputStage out_;
  ConvGeometry conv_;
  int rows_ = 0;
  double block_density_ = 1.0;
  GemmFn kernel_ = GemmReference;
  Isa isa_ = Isa::kPortable;
};

}  // namespace tfc

#endif  // TFCOMPRESS_KERNELS_LAYER_H_
