// Reading a TFLite node through our ABI declarations: is it an int8 FULLY_CONNECTED,
// CONV_2D or DEPTHWISE_CONV_2D we can run, and with which numbers.
#ifndef TFCOMPRESS_KERNELS_NODE_SPEC_H_
#define TFCOMPRESS_KERNELS_NODE_SPEC_H_

#include <string>
#include <vector>

#include "abi.h"
#include "layer.h"

namespace tfc {

enum class Verdict {
  kClaim,        // supported: run it with our kernels
  kSkip,         // well-formed but not for us (float, other op, non-constant weights, ...)
  kImplausible,  // the structs do not look like TFLite's: claim nothing at all
};

struct NodeSpec {
  bool is_conv = false;       // CONV_2D or DEPTHWISE_CONV_2D
  bool is_depthwise = false;  // DEPTHWISE_CONV_2D: n channels, k = kh * kw taps each
  int node = -1;                                        // execution-plan node index
  int input = -1, filter = -1, bias = -1, output = -1;  // tensor indices
  int n = 0, k = 0;
  const int8_t* weights = nullptr;
  const int32_t* bias_data = nullptr;
  std::vector<double> real_multipliers;
  int32_t input_zero_point = 0, output_zero_point = 0, act_min = -128, act_max = 127;
  bool keep_num_dims = false;
  int depth_multiplier = 1;
  ConvGeometry conv;
};

// Checks every tensor of the context for values TFLite could hold; false means
// our layout does not match the runtime's.
bool TensorsPlausible(const abi::Context* context, std::string* why);

Verdict AnalyzeNode(const abi::Context* context, const abi::Node* node,
                    const abi::Registration* registration, NodeSpec* spec, std::string* why);

// "FULLY_CONNECTED", "CONV_2D" or "DEPTHWISE_CONV_2D".
const char* OpName(const NodeSpec& spec);

// The tensor's current shape.
std::vector<int> Shape(const abi::Tensor& tensor);

// "node 3 (FULLY_CONNECTED, output 'dense_1')" for errors: the node index, its op and
// the name of its output tensor (the Keras layer's in converted models) when it has one.
std::string NodeLabel(const abi::Context* context, const NodeSpec& spec);

// "[1, 28, 28, 3]".
std::string ShapeText(const std::vector<int>& shape);

}  // namespace tfc

#endif  // TFCOMPRESS_KERNELS_NODE_SPEC_H_
