#include "depthwise_layer.h"

#include <cstdio>

namespace tfc {

DepthwiseLayer::DepthwiseLayer(const int8_t* filter, int depth_multiplier, const int32_t* bias,
                               const std::vector<double>& real_multipliers,
                               int32_t input_zero_point, int32_t output_zero_point,
                               int32_t act_min, int32_t act_max, ConvGeometry conv)
    : same_padding_(conv.same_padding) {
  DepthwiseProblem& p = problem_;
  p.in_channels = conv.in_channels;
  p.depth_multiplier = depth_multiplier;
  p.kernel_h = conv.kernel_h;
  p.kernel_w = conv.kernel_w;
  p.stride_h = conv.stride_h;
  p.stride_w = conv.stride_w;
  p.dilation_h = conv.dilation_h;
  p.dilation_w = conv.dilation_w;
  p.input_offset = -input_zero_point;
  p.filter = filter;
  const int channels = p.channels();
  if (bias != nullptr) bias_.assign(bias, bias + channels);
  multiplier_.resize(channels);
  shift_.resize(channels);
  for (int o = 0; o < channels; ++o) {
    const double real = real_multipliers.size() == 1 ? real_multipliers[0] : real_multipliers[o];
    QuantizeMultiplier(real, &multiplier_[o], &shift_[o]);
  }
  p.out.bias = bias_.empty() ? nullptr : bias_.data();
  p.out.multiplier = multiplier_.data();
  p.out.shift = shift_.data();
  p.out.zero_point = output_zero_point;
  p.out.act_min = act_min;
  p.out.act_max = act_max;
  p.out.round_twice = true;  // as TFLite's reference DEPTHWISE_CONV_2D
}

void DepthwiseLayer::SelectKernel(KernelChoice choice, Isa isa) {
  isa_ = DepthwiseIsa(isa);
  const bool reference = choice == KernelChoice::kReference || problem_.kernel_h > kMaxKernelH;
  kernel_ = reference ? DepthwiseReference : DepthwiseKernelFor(isa);
  if (kernel_ != DepthwiseReference) {
    PackDepthwise(problem_, &packed_);
    problem_.packed = &packed_;
  }
}

std::vector<int> DepthwiseLayer::Resize(const std::vector<int>& input_shape, bool) {
  DepthwiseProblem& p = problem_;
  if (input_shape.size() != 4 || input_shape[3] != p.in_channels) return {};
  p.batch = input_shape[0];
  p.in_h = input_shape[1];
  p.in_w = input_shape[2];
  p.out_h = ConvOutSize(same_padding_, p.in_h, p.kernel_h, p.stride_h, p.dilation_h);
  p.out_w = ConvOutSize(same_padding_, p.in_w, p.kernel_w, p.stride_w, p.dilation_w);
  if (p.out_h < 0 || p.out_w < 0) return {};  // an empty output (0) is valid, as in TFLite
  p.pad_top = ConvPadBefore(same_padding_, p.in_h, p.out_h, p.kernel_h, p.stride_h, p.dilation_h);
  p.pad_left = ConvPadBefore(same_padding_, p.in_w, p.out_w, p.kernel_w, p.stride_w, p.dilation_w);
  return {p.batch, p.out_h, p.out_w, p.channels()};
}

void DepthwiseLayer::Run(const int8_t* input, int8_t* output, ThreadPool& pool) const {
  DepthwiseProblem p = problem_;
  p.input = input;
  p.output = output;
  const int lines = p.batch * p.out_h;
  if (pool.threads() == 1 || lines < 2) {
    kernel_(p, 0, lines);
  } else {
    pool.ParallelFor(lines, [&](int begin, int end) { kernel_(p, begin, end); });
  }
}

std::string DepthwiseLayer::Describe() const {
  char text[160];
  std::snprintf(text, sizeof(text), "DEPTHWISE_CONV_2D %dx%d x %d channels (multiplier %d) -> %s",
                problem_.kernel_h, problem_.kernel_w, problem_.channels(),
                problem_.depth_multiplier, reference() ? "reference" : IsaName(isa_));
  return text;
}

}  // namespace tfc
