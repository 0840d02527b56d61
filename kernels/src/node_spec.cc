#include "node_spec.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace tfc {
namespace {

using abi::Tensor;

constexpr int kMaxRank = 8;

bool DimsPlausible(const abi::IntArray* dims) {
  if (dims == nullptr || dims->size < 0 || dims->size > kMaxRank) return false;
  for (int i = 0; i < dims->size; ++i)
    if (dims->data[i] < 0) return false;
  return true;
}

int64_t Elements(const Tensor& t) {
  int64_t count = 1;
  for (int i = 0; i < t.dims->size; ++i) count *= t.dims->data[i];
  return count;
}

bool IsConstant(const Tensor& t) {
  return t.allocation_type == abi::kMmapRo || t.allocation_type == abi::kPersistentRo;
}

// Constant tensors must hold exactly their elements.
bool ConstantPlausible(const Tensor& t, int element_bytes) {
  return t.data != nullptr && static_cast<int64_t>(t.bytes) == Elements(t) * element_bytes;
}

// Any dimension but the first unknown in the signature: a dynamic shape.
bool DynamicBeyondBatch(const Tensor& t) {
  const abi::IntArray* signature = t.dims_signature;
  if (signature == nullptr) return false;
  for (int i = 1; i < signature->size; ++i)
    if (signature->data[i] < 0) return true;
  return false;
}

const abi::AffineQuantization* Affine(const Tensor& t) {
  if (t.quantization.type != abi::kAffineQuantization) return nullptr;
  return static_cast<const abi::AffineQuantization*>(t.quantization.params);
}

bool PerTensorInt8(const Tensor& t) {
  return t.type == abi::kInt8 && t.params.zero_point >= -128 && t.params.zero_point <= 127;
}

// A scale our arithmetic shares with TFLite's: finite, positive and not denormal.
bool ScaleInRange(float scale) { return std::isfinite(scale) && scale >= FLT_MIN; }

// A decline reason: `format` with one %g (the value) and optionally one %d (the channel).
std::string Printf(const char* format, double value, int channel) {
  char text[96];
  std::snprintf(text, sizeof(text), format, value, channel);
  return text;
}

// Largest |requantized value| we claim: below it neither rounding scheme (nor the
// zero point added after it) leaves int32, where TFLite's reference saturates or
// relies on undefined behaviour and we would wrap.
constexpr double kMaxRequantized = 1 << 30;

// Bound on |accumulator| of output channel `c`: |x - zero_point| <= 255 for int8
// inputs, plus |bias|.
// Weights are [n][k], a depthwise filter [k][n].
double AccumulatorBound(const NodeSpec& spec, int c) {
  const int64_t start = spec.is_depthwise ? c : static_cast<int64_t>(c) * spec.k;
  const int64_t step = spec.is_depthwise ? spec.n : 1;
  int64_t sum = 0;
  for (int i = 0; i < spec.k; ++i)
    sum += std::abs(static_cast<int>(spec.weights[start + i * step]));
  const int64_t bias = spec.bias_data == nullptr ? 0 : spec.bias_data[c];
  return 255.0 * static_cast<double>(sum) + std::fabs(static_cast<double>(bias));
}

void ActivationRange(abi::Activation activation, const Tensor& output, int32_t* lo,
                     int32_t* hi) {
  const float scale = output.params.scale;
  const int32_t zero_point = output.params.zero_point;
  auto quantize = [&](float f) { return zero_point + static_cast<int32_t>(std::round(f / scale)); };
  *lo = -128;
  *hi = 127;
  if (activation == abi::kActRelu || activation == abi::kActRelu6) *lo = std::max(*lo, quantize(0));
  if (activation == abi::kActRelu6) *hi = std::min(*hi, quantize(6));
  if (activation == abi::kActReluN1To1) {
    *lo = std::max(*lo, quantize(-1));
    *hi = std::min(*hi, quantize(1));
  }
}

class Analyzer {
 public:
  Analyzer(const abi::Context* context, std::string* why) : context_(context), why_(why) {}

  // A node's tensor index, checked; nullptr for an absent optional tensor (-1).
  Verdict Get(const abi::IntArray* indices, int position, const Tensor** out) {
    *out = nullptr;
    if (indices == nullptr || position >= indices->size) return Fail("missing tensor index");
    const int index = indices->data[position];
    if (index == -1) return Verdict::kClaim;
    if (index < 0 || static_cast<size_t>(index) >= context_->tensors_size)
      return Fail("tensor index out of range");
    const Tensor& t = context_->tensors[index];
    if (!DimsPlausible(t.dims)) return Fail("tensor dims");
    if (t.quantization.type == abi::kAffineQuantization) {
      const auto* q = Affine(t);
      if (q == nullptr || q->scale == nullptr || q->scale->size < 1 || q->scale->size > (1 << 24))
        return Fail("affine quantization");
    }
    *out = &t;
    return Verdict::kClaim;
  }

  Verdict Fail(const char* what) {
    *why_ = std::string("implausible ") + what;
    return Verdict::kImplausible;
  }

  Verdict Skip(const std::string& what) {
    *why_ = what;
    return Verdict::kSkip;
  }

 private:
  const abi::Context* context_;
  std::string* why_;
};

// Why a conv's or a depthwise conv's padding, strides or dilation cannot run; nullptr when
// they can (both parameter structs name these fields alike).
template <typename Params>
const char* GeometryProblem(const Params& p) {
  if (p.padding != abi::kPaddingSame && p.padding != abi::kPaddingValid) return "padding";
  if (p.stride_width < 1 || p.stride_height < 1 || p.dilation_width_factor < 1 ||
      p.dilation_height_factor < 1)
    return "stride or dilation";
  return nullptr;
}

template <typename Params>
void SetGeometry(const Params& p, int kernel_h, int kernel_w, int in_channels, ConvGeometry* g) {
  g->kernel_h = kernel_h;
  g->kernel_w = kernel_w;
  g->in_channels = in_channels;
  g->stride_h = p.stride_height;
  g->stride_w = p.stride_width;
  g->dilation_h = p.dilation_height_factor;
  g->dilation_w = p.dilation_width_factor;
  g->same_padding = p.padding == abi::kPaddingSame;
}

}  // namespace

const char* OpName(const NodeSpec& spec) {
  if (spec.is_depthwise) return "DEPTHWISE_CONV_2D";
  return spec.is_conv ? "CONV_2D" : "FULLY_CONNECTED";
}

std::vector<int> Shape(const Tensor& tensor) {
  return std::vector<int>(tensor.dims->data, tensor.dims->data + tensor.dims->size);
}

std::string NodeLabel(const abi::Context* context, const NodeSpec& spec) {
  std::string label = "node " + std::to_string(spec.node) + " (" + OpName(spec);
  const char* name = context->tensors[spec.output].name;
  if (name != nullptr && name[0] != '\0') label += std::string(", output '") + name + "'";
  return label + ")";
}

std::string ShapeText(const std::vector<int>& shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i) text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + "]";
}

bool TensorsPlausible(const abi::Context* context, std::string* why) {
  if (context->tensors == nullptr || context->tensors_size > (1u << 24)) {
    *why = "implausible tensor count";
    return false;
  }
  for (size_t i = 0; i < context->tensors_size; ++i) {
    const Tensor& t = context->tensors[i];
    if (t.type < abi::kNoType || t.type > abi::kLastKnownType ||
        t.allocation_type < abi::kMemNone || t.allocation_type > abi::kVariantObject ||
        (t.quantization.type != abi::kNoQuantization &&
         t.quantization.type != abi::kAffineQuantization) ||
        t.bytes > (size_t{1} << 40)) {
      *why = "implausible tensor " + std::to_string(i);
      return false;
    }
  }
  return true;
}

Verdict AnalyzeNode(const abi::Context* context, const abi::Node* node,
                    const abi::Registration* registration, NodeSpec* spec, std::string* why) {
  Analyzer a(context, why);
  const int code = registration->builtin_code;
  if (code != abi::kFullyConnected && code != abi::kConv2D && code != abi::kDepthwiseConv2D)
    return a.Skip("unsupported op");
  spec->is_conv = code == abi::kConv2D || code == abi::kDepthwiseConv2D;
  spec->is_depthwise = code == abi::kDepthwiseConv2D;
  if (node->builtin_data == nullptr) return a.Fail("builtin data");
  if (node->outputs == nullptr || node->outputs->size != 1) return a.Skip("not one output");
  if (node->inputs == nullptr || node->inputs->size < 2 || node->inputs->size > 3)
    return a.Skip("not 2 or 3 inputs");
  const Tensor *input, *filter, *bias = nullptr, *output;
  for (auto [position, slot] : {std::pair{0, &input}, {1, &filter}}) {
    if (Verdict v = a.Get(node->inputs, position, slot); v != Verdict::kClaim) return v;
    if (*slot == nullptr) return a.Skip("absent input");
  }
  if (node->inputs->size == 3) {
    if (Verdict v = a.Get(node->inputs, 2, &bias); v != Verdict::kClaim) return v;
  }
  if (Verdict v = a.Get(node->outputs, 0, &output); v != Verdict::kClaim) return v;
  if (output == nullptr) return a.Skip("absent output");
  spec->input = node->inputs->data[0];
  spec->filter = node->inputs->data[1];
  spec->bias = bias == nullptr ? -1 : node->inputs->data[2];
  spec->output = node->outputs->data[0];

  if (!PerTensorInt8(*input) || !PerTensorInt8(*output) || filter->type != abi::kInt8)
    return a.Skip("not int8");
  if (!ScaleInRange(input->params.scale))
    return a.Skip(Printf("input scale %g out of range", input->params.scale, 0));
  if (!ScaleInRange(output->params.scale))
    return a.Skip(Printf("output scale %g out of range", output->params.scale, 0));
  if (!IsConstant(*filter)) return a.Skip("weights are not constant");
  if (!ConstantPlausible(*filter, 1)) return a.Fail("constant weight bytes");
  if (filter->sparsity != nullptr) return a.Skip("TFLite-sparse weights");
  if (DynamicBeyondBatch(*input) || DynamicBeyondBatch(*output)) return a.Skip("dynamic shape");

  abi::Activation activation;
  int quantized_dimension = 0;  // of per-channel weight scales: the output channels
  if (spec->is_depthwise) {
    const auto* params = static_cast<const abi::DepthwiseConvParams*>(node->builtin_data);
    if (filter->dims->size != 4 || input->dims->size != 4) return a.Skip("depthwise conv rank");
    const int* f = filter->dims->data;
    const int in_channels = input->dims->data[3];
    if (f[0] != 1) return a.Skip("depthwise filter of batch " + std::to_string(f[0]));
    if (in_channels <= 0 || f[3] % in_channels != 0)
      return a.Skip("depthwise filter channels " + std::to_string(f[3]) +
                    " not a multiple of input channels " + std::to_string(in_channels));
    spec->depth_multiplier = f[3] / in_channels;
    if (params->depth_multiplier != spec->depth_multiplier)
      return a.Skip("depth multiplier " + std::to_string(params->depth_multiplier) +
                    " does not match the filter's " + std::to_string(spec->depth_multiplier));
    if (const char* why = GeometryProblem(*params)) return a.Skip(why);
    spec->n = f[3];
    spec->k = f[1] * f[2];
    SetGeometry(*params, f[1], f[2], in_channels, &spec->conv);
    activation = params->activation;
    quantized_dimension = 3;
  } else if (spec->is_conv) {
    const auto* params = static_cast<const abi::ConvParams*>(node->builtin_data);
    if (filter->dims->size != 4 || input->dims->size != 4) return a.Skip("conv rank");
    const int* f = filter->dims->data;
    spec->n = f[0];
    spec->k = f[1] * f[2] * f[3];
    if (input->dims->data[3] != f[3]) return a.Skip("grouped conv");
    if (const char* why = GeometryProblem(*params)) return a.Skip(why);
    SetGeometry(*params, f[1], f[2], f[3], &spec->conv);
    activation = params->activation;
  } else {
    const auto* params = static_cast<const abi::FullyConnectedParams*>(node->builtin_data);
    if (filter->dims->size != 2) return a.Skip("weights rank");
    if (params->weights_format != 0) return a.Skip("shuffled weights");
    spec->n = filter->dims->data[0];
    spec->k = filter->dims->data[1];
    spec->keep_num_dims = params->keep_num_dims;
    activation = params->activation;
  }
  if (spec->n <= 0 || spec->k <= 0) return a.Skip("empty weights");
  if (activation != abi::kActNone && activation != abi::kActRelu &&
      activation != abi::kActRelu6 && activation != abi::kActReluN1To1)
    return a.Skip("fused activation");

  if (bias != nullptr) {
    if (bias->type != abi::kInt32) return a.Skip("bias not int32");
    if (!IsConstant(*bias)) return a.Skip("bias is not constant");
    if (!ConstantPlausible(*bias, 4)) return a.Fail("constant bias bytes");
    if (Elements(*bias) != spec->n) return a.Skip("bias size");
    spec->bias_data = static_cast<const int32_t*>(bias->data);
  }

  const abi::AffineQuantization* q = Affine(*filter);
  if (q == nullptr) return a.Skip("weights not quantized");
  const int scales = q->scale->size;
  if (scales != 1 && (scales != spec->n || q->quantized_dimension != quantized_dimension))
    return a.Skip("weight scale layout");
  if (q->zero_point != nullptr) {
    for (int i = 0; i < q->zero_point->size; ++i)
      if (q->zero_point->data[i] != 0) return a.Skip("weight zero point");
  }
  spec->weights = static_cast<const int8_t*>(filter->data);
  spec->real_multipliers.clear();
  for (int i = 0; i < scales; ++i) {
    const float s = q->scale->data[i];
    if (!ScaleInRange(s)) return a.Skip(Printf("weight scale %g of channel %d out of range", s, i));
    spec->real_multipliers.push_back(static_cast<double>(input->params.scale) * s /
                                     static_cast<double>(output->params.scale));
  }
  for (int c = 0; c < spec->n; ++c) {
    const double real = spec->real_multipliers[scales == 1 ? 0 : c];
    if ((AccumulatorBound(*spec, c) + 1.0) * real >= kMaxRequantized)
      return a.Skip(Printf("multiplier %g of channel %d may overflow int32", real, c));
  }
  spec->input_zero_point = input->params.zero_point;
  spec->output_zero_point = output->params.zero_point;
  ActivationRange(activation, *output, &spec->act_min, &spec->act_max);
  return Verdict::kClaim;
}

}  // namespace tfc
