// Our own declarations of the parts of the TFLite C ABI that a delegate touches.
//
// Written from the public documentation of tensorflow/lite/core/c/common.h and
// builtin_op_data.h; no upstream header is copied or needed. These structs have
// only been appended to since 2022, so the layout below serves TF 2.14..2.21 and
// LiteRT 2.x. Rules this file relies on:
//   * sizes are pinned with static_assert (x86-64 and aarch64, LP64);
//   * fields newer than TF 2.14 are never read;
//   * every TfLiteRegistration we hand over is zero-filled first.
#ifndef TFCOMPRESS_KERNELS_ABI_H_
#define TFCOMPRESS_KERNELS_ABI_H_

#include <cstddef>
#include <cstdint>

namespace tfc::abi {

enum Status : int { kOk = 0, kError = 1 };

// TfLiteType values used here.
enum Type : int {
  kNoType = 0,
  kFloat32 = 1,
  kInt32 = 2,
  kUInt8 = 3,
  kInt64 = 4,
  kInt16 = 7,
  kInt8 = 9,
  kInt4 = 18,
  kLastKnownType = 24,  // plausibility bound, not a real type
};

// TfLiteAllocationType.
enum AllocationType : int {
  kMemNone = 0,
  kMmapRo = 1,
  kArenaRw = 2,
  kArenaRwPersistent = 3,
  kDynamic = 4,
  kPersistentRo = 5,
  kCustom = 6,
  kVariantObject = 7,
};

enum QuantizationType : int { kNoQuantization = 0, kAffineQuantization = 1 };

// TfLiteFusedActivation.
enum Activation : int {
  kActNone = 0,
  kActRelu = 1,
  kActReluN1To1 = 2,
  kActRelu6 = 3,
  kActTanh = 4,
  kActSignBit = 5,
  kActSigmoid = 6,
};

// TfLitePadding.
enum Padding : int { kPaddingUnknown = 0, kPaddingSame = 1, kPaddingValid = 2 };

// Builtin operator codes (schema BuiltinOperator) that we claim.
enum BuiltinCode : int { kConv2D = 3, kDepthwiseConv2D = 4, kFullyConnected = 9 };

struct IntArray {
  int size;
  int data[];
};

struct FloatArray {
  int size;
  float data[];
};

struct QuantizationParams {
  float scale;
  int32_t zero_point;
};

struct Quantization {
  QuantizationType type;
  void* params;  // AffineQuantization* when type == kAffineQuantization
};

struct AffineQuantization {
  FloatArray* scale;
  IntArray* zero_point;
  int32_t quantized_dimension;
};

struct Delegate;

struct Tensor {
#ifdef TFC_TEST_ABI_MISMATCH
  // Test builds only: a deliberately wrong layout, which the run-time checks must catch.
  int64_t test_only_shift;
#endif
  Type type;
  void* data;
  IntArray* dims;
  QuantizationParams params;
  AllocationType allocation_type;
  size_t bytes;
  const void* allocation;
  const char* name;
  Delegate* delegate;
  int buffer_handle;
  bool data_is_stale;
  bool is_variable;
  Quantization quantization;
  void* sparsity;  // non-null when the tensor uses TFLite's sparse encoding
  const IntArray* dims_signature;
};

struct Node {
  IntArray* inputs;
  IntArray* outputs;
  IntArray* intermediates;
  IntArray* temporaries;
  void* user_data;
  void* builtin_data;
  const void* custom_initial_data;
  int custom_initial_data_size;
  Delegate* delegate;
  bool might_have_side_effect;
};

struct Context;

struct Registration {
  void* (*init)(Context* context, const char* buffer, size_t length);
  void (*free)(Context* context, void* buffer);
  Status (*prepare)(Context* context, Node* node);
  Status (*invoke)(Context* context, Node* node);
  const char* (*profiling_string)(const Context* context, const Node* node);
  int32_t builtin_code;
  const char* custom_name;
  int version;
  void* registration_external;
  void* async_kernel;
  uint64_t inplace_operator;
};

struct DelegateParams {
  Delegate* delegate;
  IntArray* nodes_to_replace;
  IntArray* input_tensors;
  IntArray* output_tensors;
};

// Only the leading fields, which have not moved since TF 1.x, are declared;
// we never read past recommended_num_threads.
struct Context {
  size_t tensors_size;
  Status (*GetExecutionPlan)(Context* context, IntArray** execution_plan);
  Tensor* tensors;
  void* impl_;
  Status (*ResizeTensor)(Context* context, Tensor* tensor, IntArray* new_size);
  void (*ReportError)(Context* context, const char* format, ...);
  Status (*AddTensors)(Context* context, int tensors_to_add, int* first_new_tensor_index);
  Status (*GetNodeAndRegistration)(Context* context, int node_index, Node** node,
                                   Registration** registration);
  Status (*ReplaceNodeSubsetsWithDelegateKernels)(Context* context, Registration registration,
                                                  const IntArray* nodes_to_replace,
                                                  Delegate* delegate);
  int recommended_num_threads;
};

// TfLiteDelegateFlags.
enum DelegateFlags : int64_t {
  kDelegateFlagsAllowDynamicTensors = 1,
  kDelegateFlagsRequirePropagatedShapes = 2,
};

struct Delegate {
  void* data_;
  Status (*Prepare)(Context* context, Delegate* delegate);
  Status (*CopyFromBufferHandle)(Context* context, Delegate* delegate, int buffer_handle,
                                 Tensor* tensor);
  Status (*CopyToBufferHandle)(Context* context, Delegate* delegate, int buffer_handle,
                               Tensor* tensor);
  void (*FreeBufferHandle)(Context* context, Delegate* delegate, int* handle);
  int64_t flags;
  void* opaque_delegate_builder;
};

// builtin_data of FULLY_CONNECTED. quantized_bias_type (2024) is not declared:
// older runtimes allocate the struct without it.
struct FullyConnectedParams {
  Activation activation;
  int weights_format;  // 0: default; anything else is declined
  bool keep_num_dims;
  bool asymmetric_quantize_inputs;
};

// builtin_data of CONV_2D, without the trailing quantized_bias_type.
struct ConvParams {
  Padding padding;
  int stride_width;
  int stride_height;
  Activation activation;
  int dilation_width_factor;
  int dilation_height_factor;
};

// builtin_data of DEPTHWISE_CONV_2D, without the trailing quantized_bias_type.
struct DepthwiseConvParams {
  Padding padding;
  int stride_width;
  int stride_height;
  int depth_multiplier;
  Activation activation;
  int dilation_width_factor;
  int dilation_height_factor;
};

static_assert(sizeof(void*) == 8, "tfcompress kernels support LP64 targets only");
#ifndef TFC_TEST_ABI_MISMATCH
static_assert(sizeof(Tensor) == 112, "TfLiteTensor layout");
static_assert(offsetof(Tensor, quantization) == 80, "TfLiteTensor.quantization offset");
static_assert(offsetof(Tensor, dims_signature) == 104, "TfLiteTensor.dims_signature offset");
#endif
static_assert(sizeof(Node) == 80, "TfLiteNode layout");
static_assert(sizeof(Registration) == 88, "TfLiteRegistration layout");
static_assert(offsetof(Registration, builtin_code) == 40, "TfLiteRegistration.builtin_code");
static_assert(sizeof(Delegate) == 56, "TfLiteDelegate layout");
static_assert(sizeof(DelegateParams) == 32, "TfLiteDelegateParams layout");
static_assert(offsetof(Context, recommended_num_threads) == 72, "TfLiteContext layout");
static_assert(sizeof(AffineQuantization) == 24, "TfLiteAffineQuantization layout");

}  // namespace tfc::abi

#endif  // TFCOMPRESS_KERNELS_ABI_H_
