// One claimed DEPTHWISE_CONV_2D node: the depthwise kernels of depthwise.h over the
// model's own [kh][kw][channels] filter (no repacking; no block-sparse form).
#ifndef TFCOMPRESS_KERNELS_DEPTHWISE_LAYER_H_
#define TFCOMPRESS_KERNELS_DEPTHWISE_LAYER_H_

#include <string>
#include <vector>

#include "depthwise.h"
#include "layer.h"
#include "node_runner.h"

namespace tfc {

class DepthwiseLayer : public NodeRunner {
 public:
  // filter: [kernel_h][kernel_w][channels] int8 with channels = conv.in_channels *
  // depth_multiplier; real_multipliers: input_scale * filter_scale[o] / output_scale
  // per output channel (or one).
  DepthwiseLayer(const int8_t* filter, int depth_multiplier, const int32_t* bias,
                 const std::vector<double>& real_multipliers, int32_t input_zero_point,
                 int32_t output_zero_point, int32_t act_min, int32_t act_max, ConvGeometry conv);

  // kReference runs DepthwiseReference; any other choice the fast kernel for `isa`.
  void SelectKernel(KernelChoice choice, Isa isa);

  std::vector<int> Resize(const std::vector<int>& input_shape, bool keep_num_dims) override;
  int rows() const override { return problem_.batch * problem_.out_h * problem_.out_w; }
  void Run(const int8_t* input, int8_t* output, ThreadPool& pool) const override;
  bool sparse() const override { return false; }
  bool reference() const override { return kernel_ == DepthwiseReference; }
  std::string Describe() const override;

 private:
  DepthwiseProblem problem_;
  DepthwisePacked packed_;
  bool same_padding_;
  std::vector<int32_t> bias_, multiplier_, shift_;
  DepthwiseFn kernel_ = DepthwiseReference;
  Isa isa_ = Isa::kPortable;
};

}  // namespace tfc

#endif  // TFCOMPRESS_KERNELS_DEPTHWISE_LAYER_H_
