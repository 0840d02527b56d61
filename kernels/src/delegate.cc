// The external TFLite delegate: thin glue between the interpreter and Layer / DepthwiseLayer.
//
// Prepare claims int8 FULLY_CONNECTED, CONV_2D and DEPTHWISE_CONV_2D nodes that AnalyzeNode
// accepts and the node selection picks (with kernel "auto", those the cost model expects to run
// faster than the default kernels, and layers too small to matter next to them); each
// connected group of claimed nodes becomes one partition, run by the callbacks below.
// Tensors that live only inside a partition get our own buffers.
#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "abi.h"
#include "c_api.h"
#include "cost_model.h"
#include "depthwise_layer.h"
#include "layer.h"
#include "node_spec.h"
#include "thread_pool.h"

namespace tfc {
namespace {

constexpr uint64_t kMagic = 0x74666373706172ULL;
constexpr int kDelegateBuiltinCode = 51;  // kTfLiteBuiltinDelegate

// Counters readable from Python through tfc_delegate_counter; keep in step with kCounterNames.
enum Counter {
  kNodesClaimed,
  kNodesDeclined,
  kPartitions,
  kInvocations,
  kDenseNodes,
  kSparseNodes,
  kReferenceNodes,
  kDeclinedAll,
  kNodesLeft,
  kNumCounters
};
const char* const kCounterNames[kNumCounters] = {
    "nodes_claimed", "nodes_declined",  "partitions",      "invocations", "dense_nodes",
    "sparse_nodes",  "reference_nodes", "declined_all",    "nodes_left"};

// Which of the nodes we can run are claimed.
enum class Selection {
  kAuto,  // kernel "auto": those the cost model expects to win; a forced kernel: all
  kAll,   // all of them
  kList,  // those in Options::node_list
};

struct Options {
  KernelChoice kernel = KernelChoice::kAuto;
  int threads = 1;
  bool verbose = false;
  Isa isa = DetectIsa();
  Selection selection = Selection::kAuto;
  std::vector<int> node_list;
};

struct DelegateState {
  abi::Delegate delegate;  // first member: a Delegate* is a DelegateState*
  uint64_t magic = kMagic;
  Options options;
  std::unique_ptr<ThreadPool> pool;
  std::atomic<int64_t> counters[kNumCounters] = {};
  std::mutex nodes_mutex;
  std::vector<TfcNodeInfo> nodes;  // every node we could run seen so far (tfc_delegate_node)

  void AddNode(const TfcNodeInfo& info) {
    std::lock_guard<std::mutex> lock(nodes_mutex);
    nodes.push_back(info);
  }
};

// GEMM rows of a node at its current (propagated) shapes; 1 where a shape is unknown.
int RowsOf(const abi::Context* context, const NodeSpec& spec) {
  const std::vector<int> shape = Shape(context->tensors[spec.is_conv ? spec.output : spec.input]);
  int64_t elements = 1;
  for (int d : shape) elements *= d > 0 ? d : 1;
  const int64_t rows = elements / (spec.is_conv ? spec.n : spec.k);
  return rows > 0 && rows < INT32_MAX ? static_cast<int>(rows) : 1;
}

// The record of a node we can run, and whether the selection claims it.
TfcNodeInfo Decide(const abi::Context* context, const NodeSpec& spec, const Options& options,
                   Host host) {
  TfcNodeInfo info{};
  info.node = spec.node;
  info.n = spec.n;
  info.k = spec.k;
  info.rows = RowsOf(context, spec);
  // A depthwise filter has no block form: it always runs as it is stored.
  info.block_density = spec.is_depthwise ? 1.0 : BlockDensity(spec.weights, spec.n, spec.k);
  info.op = OpName(spec);
  const bool reference = options.kernel == KernelChoice::kReference;
  const bool sparse =
      !reference && !spec.is_depthwise && RunsSparse(options.kernel, info.block_density);
  info.kernel = reference ? "reference" : (sparse ? "sparse" : "dense");
  info.isa = reference ? nullptr
                       : IsaName(spec.is_depthwise ? DepthwiseIsa(options.isa) : options.isa);
  NodeCost cost;
  cost.is_conv = spec.is_conv;
  cost.is_depthwise = spec.is_depthwise;
  cost.rows = info.rows;
  cost.n = spec.n;
  cost.k = spec.k;
  const ConvGeometry& g = spec.conv;
  const bool direct = g.kernel_h == 1 && g.kernel_w == 1 && g.stride_h == 1 && g.stride_w == 1;
  cost.taps = spec.is_conv && !spec.is_depthwise && !direct ? g.kernel_h * g.kernel_w : 0;
  cost.block_density = info.block_density;
  cost.sparse_kernel = sparse;
  info.expected_speedup = reference ? 0.0 : ExpectedSpeedup(options.isa, host, cost);
  switch (options.selection) {
    case Selection::kAll: info.claimed = 1; break;
    case Selection::kList:
      info.claimed = 0;
      for (int node : options.node_list) info.claimed |= node == spec.node ? 1 : 0;
      break;
    case Selection::kAuto:
      info.claimed = options.kernel != KernelChoice::kAuto ||
                     info.expected_speedup >= kClaimMinSpeedup;
      break;
  }
  return info;
}

DelegateState* StateOf(const void* delegate) {
  auto* state = static_cast<DelegateState*>(const_cast<void*>(delegate));
  return (state != nullptr && state->magic == kMagic) ? state : nullptr;
}

void Log(const Options& options, const char* format, ...) {
  if (!options.verbose) return;
  std::fprintf(stderr, "tfcompress kernels: ");
  va_list args;
  va_start(args, format);
  std::vfprintf(stderr, format, args);
  va_end(args);
  std::fprintf(stderr, "\n");
}

// A node we can run, with the tensors it reads (its activation input) and writes.
struct Candidate {
  TfcNodeInfo info;
  int input, output;
};

// kernel="auto": a layer too small to matter (fewer than kMinWork multiply-adds: as fast
// with either kernels) is claimed when it reads or feeds a claimed node directly, so the
// graph is not split for it: each hand-off to the default kernels and back costs an extra
// partition invoke (LeNet-300-100's 10x100 logits after claimed layers on the Xeon: 2.0 us
// left alone, 1.4 us claimed).
void ClaimTinyNeighbours(std::vector<Candidate>* candidates) {
  for (bool changed = true; changed;) {
    changed = false;
    for (Candidate& c : *candidates) {
      if (c.info.claimed || !TooSmallToMatter(c.info.rows, c.info.n, c.info.k)) continue;
      for (const Candidate& other : *candidates) {
        if (other.info.claimed && (other.output == c.input || other.input == c.output)) {
          c.info.claimed = 1;
          changed = true;
          break;
        }
      }
    }
  }
}

// A connected group of claimed nodes, run in execution order.
struct Partition {
  DelegateState* state = nullptr;
  std::vector<NodeSpec> specs;
  std::vector<std::unique_ptr<NodeRunner>> layers;
  std::map<int, std::vector<int8_t>> owned;  // tensors internal to the partition
  std::map<int, std::vector<int>> owned_shape;
  std::string error;
};

void* PartitionInit(abi::Context* context, const char* buffer, size_t) {
  const auto* params = reinterpret_cast<const abi::DelegateParams*>(buffer);
  auto* partition = new Partition;
  partition->state = StateOf(params->delegate);
  if (partition->state == nullptr) {
    partition->error = "unknown delegate";
    return partition;
  }
  const Options& options = partition->state->options;
  std::vector<int> outputs(params->output_tensors->data,
                           params->output_tensors->data + params->output_tensors->size);
  for (int i = 0; i < params->nodes_to_replace->size; ++i) {
    abi::Node* node = nullptr;
    abi::Registration* registration = nullptr;
    NodeSpec spec;
    std::string why;
    spec.node = params->nodes_to_replace->data[i];
    if (context->GetNodeAndRegistration(context, spec.node, &node, &registration) != abi::kOk ||
        AnalyzeNode(context, node, registration, &spec, &why) != Verdict::kClaim) {
      partition->error = "node " + std::to_string(spec.node) + " changed after Prepare: " + why;
      return partition;
    }
    std::unique_ptr<NodeRunner> layer;
    if (spec.is_depthwise) {
      auto depthwise = std::make_unique<DepthwiseLayer>(
          spec.weights, spec.depth_multiplier, spec.bias_data, spec.real_multipliers,
          spec.input_zero_point, spec.output_zero_point, spec.act_min, spec.act_max, spec.conv);
      depthwise->SelectKernel(options.kernel, options.isa);
      layer = std::move(depthwise);
    } else {
      auto gemm = std::make_unique<Layer>(spec.is_conv, spec.weights, spec.n, spec.k,
                                          spec.bias_data, spec.real_multipliers,
                                          spec.input_zero_point, spec.output_zero_point,
                                          spec.act_min, spec.act_max, spec.conv);
      gemm->SelectKernel(options.kernel, options.isa);
      layer = std::move(gemm);
    }
    Counter kind = layer->reference() ? kReferenceNodes
                                      : (layer->sparse() ? kSparseNodes : kDenseNodes);
    partition->state->counters[kind]++;
    Log(options, "node %d: %s", spec.node, layer->Describe().c_str());
    bool internal = true;
    for (int t : outputs) internal = internal && t != spec.output;
    if (internal) partition->owned[spec.output];
    partition->specs.push_back(spec);
    partition->layers.push_back(std::move(layer));
  }
  partition->state->counters[kPartitions]++;
  return partition;
}

void PartitionFree(abi::Context*, void* buffer) { delete static_cast<Partition*>(buffer); }

abi::IntArray* NewIntArray(const std::vector<int>& values) {
  auto* array = static_cast<abi::IntArray*>(
      std::malloc(sizeof(abi::IntArray) + sizeof(int) * values.size()));
  array->size = static_cast<int>(values.size());
  for (size_t i = 0; i < values.size(); ++i) array->data[i] = values[i];
  return array;
}

abi::Status PartitionPrepare(abi::Context* context, abi::Node* node) {
  auto* partition = static_cast<Partition*>(node->user_data);
  if (!partition->error.empty()) {
    context->ReportError(context, "tfcompress kernels: %s", partition->error.c_str());
    return abi::kError;
  }
  for (size_t i = 0; i < partition->layers.size(); ++i) {
    const NodeSpec& spec = partition->specs[i];
    auto owned_in = partition->owned_shape.find(spec.input);
    const std::vector<int> in_shape = owned_in != partition->owned_shape.end()
                                          ? owned_in->second
                                          : Shape(context->tensors[spec.input]);
    const std::vector<int> out_shape = partition->layers[i]->Resize(in_shape, spec.keep_num_dims);
    if (out_shape.empty()) {
      const std::string weights = std::to_string(spec.n) + "x" + std::to_string(spec.k);
      context->ReportError(context,
                           "tfcompress kernels: %s: input shape %s does not fit its %s weights",
                           NodeLabel(context, spec).c_str(), ShapeText(in_shape).c_str(),
                           weights.c_str());
      return abi::kError;
    }
    auto owned_out = partition->owned.find(spec.output);
    if (owned_out != partition->owned.end()) {
      size_t elements = 1;
      for (int d : out_shape) elements *= d;
      owned_out->second.resize(elements);
      partition->owned_shape[spec.output] = out_shape;
    } else if (Shape(context->tensors[spec.output]) != out_shape) {
      if (context->ResizeTensor(context, &context->tensors[spec.output],
                                NewIntArray(out_shape)) != abi::kOk)
        return abi::kError;
    }
  }
  return abi::kOk;
}

abi::Status PartitionInvoke(abi::Context* context, abi::Node* node) {
  auto* partition = static_cast<Partition*>(node->user_data);
  partition->state->counters[kInvocations]++;
  auto data = [&](int tensor) -> int8_t* {
    auto owned = partition->owned.find(tensor);
    if (owned != partition->owned.end()) return owned->second.data();
    return static_cast<int8_t*>(context->tensors[tensor].data);
  };
  for (size_t i = 0; i < partition->layers.size(); ++i) {
    if (partition->layers[i]->rows() == 0) continue;  // an empty output
    const NodeSpec& spec = partition->specs[i];
    const int8_t* input = data(spec.input);
    int8_t* output = data(spec.output);
    if (input == nullptr || output == nullptr) {
      context->ReportError(context, "tfcompress kernels: %s: %s tensor without data",
                           NodeLabel(context, spec).c_str(), input == nullptr ? "input" : "output");
      return abi::kError;
    }
    partition->layers[i]->Run(input, output, *partition->state->pool);
  }
  return abi::kOk;
}

abi::Status DelegatePrepare(abi::Context* context, abi::Delegate* delegate) {
  DelegateState* state = StateOf(delegate);
  if (state == nullptr) return abi::kError;
  const Options& options = state->options;
  std::string why;
  abi::IntArray* plan = nullptr;
  if (!TensorsPlausible(context, &why) || context->GetExecutionPlan(context, &plan) != abi::kOk ||
      plan == nullptr) {
    state->counters[kDeclinedAll] = 1;
    Log(options, "claiming nothing: %s", why.c_str());
    return abi::kOk;
  }
  std::vector<Candidate> candidates;
  int declined = 0;
  const Host host = DetectHost();
  for (int i = 0; i < plan->size; ++i) {
    abi::Node* node = nullptr;
    abi::Registration* registration = nullptr;
    if (context->GetNodeAndRegistration(context, plan->data[i], &node, &registration) !=
            abi::kOk ||
        node == nullptr || registration == nullptr) {
      state->counters[kDeclinedAll] = 1;
      Log(options, "claiming nothing: node %d unreadable", plan->data[i]);
      return abi::kOk;
    }
    NodeSpec spec;
    switch (AnalyzeNode(context, node, registration, &spec, &why)) {
      case Verdict::kClaim: {
        spec.node = plan->data[i];
        candidates.push_back({Decide(context, spec, options, host), node->inputs->data[0],
                              node->outputs->data[0]});
        break;
      }
      case Verdict::kImplausible:
        state->counters[kDeclinedAll] = 1;
        Log(options, "claiming nothing: node %d: %s", plan->data[i], why.c_str());
        return abi::kOk;
      case Verdict::kSkip:
        if (registration->builtin_code == abi::kFullyConnected ||
            registration->builtin_code == abi::kConv2D ||
            registration->builtin_code == abi::kDepthwiseConv2D) {
          ++declined;
          Log(options, "node %d declined: %s", plan->data[i], why.c_str());
        }
        break;
    }
  }
  if (options.selection == Selection::kAuto && options.kernel == KernelChoice::kAuto) {
    ClaimTinyNeighbours(&candidates);
  }
  std::vector<int> claimed;
  int left = 0;
  for (const Candidate& candidate : candidates) {
    const TfcNodeInfo& info = candidate.info;
    state->AddNode(info);
    if (info.claimed) {
      claimed.push_back(info.node);
    } else {
      ++left;
      Log(options, "node %d left to the default kernels: expected %.2fx with ours on this "
          "CPU (%s, %s %s)", info.node, info.expected_speedup, HostName(host), info.kernel,
          IsaName(options.isa));
    }
  }
  state->counters[kNodesDeclined] += declined;
  state->counters[kNodesLeft] += left;
  Log(options, "claiming %zu of %d nodes (isa %s)", claimed.size(), plan->size,
      IsaName(options.isa));
  if (claimed.empty()) return abi::kOk;
  state->counters[kNodesClaimed] += static_cast<int64_t>(claimed.size());
  abi::Registration registration;
  std::memset(&registration, 0, sizeof(registration));
  registration.init = PartitionInit;
  registration.free = PartitionFree;
  registration.prepare = PartitionPrepare;
  registration.invoke = PartitionInvoke;
  registration.builtin_code = kDelegateBuiltinCode;
  registration.custom_name = "TfcompressKernels";
  registration.version = 1;
  abi::IntArray* nodes = NewIntArray(claimed);
  const abi::Status status =
      context->ReplaceNodeSubsetsWithDelegateKernels(context, registration, nodes, delegate);
  std::free(nodes);
  return status;
}

// "auto", "all", "none" or execution-plan node indices separated by commas ("0,7").
bool ParseNodes(const std::string& value, Options* options, std::string* error) {
  options->node_list.clear();
  if (value == "auto" || value == "all") {
    options->selection = value == "auto" ? Selection::kAuto : Selection::kAll;
    return true;
  }
  options->selection = Selection::kList;
  if (value == "none") return true;
  size_t begin = 0;
  while (begin <= value.size()) {
    const size_t end = std::min(value.find(',', begin), value.size());
    const std::string item = value.substr(begin, end - begin);
    char* stop = nullptr;
    const long node = std::strtol(item.c_str(), &stop, 10);
    if (item.empty() || *stop != '\0' || node < 0 || node > INT32_MAX) {
      *error = "nodes must be auto, all, none or node indices separated by commas, got '" +
               value + "'";
      return false;
    }
    options->node_list.push_back(static_cast<int>(node));
    begin = end + 1;
  }
  return true;
}

bool ParseOptions(char** keys, char** values, size_t count, Options* options,
                  std::string* error) {
  for (size_t i = 0; i < count; ++i) {
    const std::string key = keys[i] != nullptr ? keys[i] : "";
    const std::string value = values[i] != nullptr ? values[i] : "";
    if (key == "kernel") {
      if (value == "auto") options->kernel = KernelChoice::kAuto;
      else if (value == "dense") options->kernel = KernelChoice::kDense;
      else if (value == "sparse") options->kernel = KernelChoice::kSparse;
      else if (value == "reference") options->kernel = KernelChoice::kReference;
      else {
        *error = "kernel must be auto, dense, sparse or reference, got '" + value + "'";
        return false;
      }
    } else if (key == "num_threads") {
      char* end = nullptr;
      const long threads = std::strtol(value.c_str(), &end, 10);
      if (value.empty() || *end != '\0' || threads < 1 || threads > 256) {
        *error = "num_threads must be an integer from 1 to 256, got '" + value + "'";
        return false;
      }
      options->threads = static_cast<int>(threads);
    } else if (key == "verbose") {
      if (value == "1" || value == "true" || value == "True") options->verbose = true;
      else if (value == "0" || value == "false" || value == "False") options->verbose = false;
      else {
        *error = "verbose must be true or false, got '" + value + "'";
        return false;
      }
    } else if (key == "isa") {
      bool found = value == "auto";
      if (found) options->isa = DetectIsa();
      for (Isa isa : {Isa::kPortable, Isa::kAvx2, Isa::kAvx512Vnni, Isa::kNeonDot}) {
        if (value == IsaName(isa)) {
          if (!IsaSupported(isa)) {
            *error = "isa '" + value + "' is not supported by this CPU or build";
            return false;
          }
          options->isa = isa;
          found = true;
        }
      }
      if (!found) {
        *error = "isa must be auto, portable, avx2, avx512vnni or neondot, got '" + value + "'";
        return false;
      }
    } else if (key == "nodes") {
      if (!ParseNodes(value, options, error)) return false;
    } else {
      *error = "unknown option '" + key + "' (known: kernel, num_threads, verbose, isa, nodes)";
      return false;
    }
  }
  return true;
}

}  // namespace
}  // namespace tfc

TFC_EXPORT void* tflite_plugin_create_delegate(char** keys, char** values, size_t count,
                                               void (*report_error)(const char*)) {
  tfc::Options options;
  std::string error;
  if (!tfc::ParseOptions(keys, values, count, &options, &error)) {
    error = "tfcompress kernels: " + error;
    if (report_error != nullptr) report_error(error.c_str());
    return nullptr;
  }
  auto* state = new tfc::DelegateState;
  std::memset(&state->delegate, 0, sizeof(state->delegate));
  state->delegate.data_ = state;
  state->delegate.Prepare = tfc::DelegatePrepare;
  // Keras models have a dynamic batch (Flatten becomes a RESHAPE whose shape is
  // computed): accept dynamic tensors, and have shapes propagated before Prepare.
  state->delegate.flags = tfc::abi::kDelegateFlagsAllowDynamicTensors |
                          tfc::abi::kDelegateFlagsRequirePropagatedShapes;
  state->options = options;
  state->pool = std::make_unique<tfc::ThreadPool>(options.threads);
  return &state->delegate;
}

TFC_EXPORT void tflite_plugin_destroy_delegate(void* delegate) {
  delete tfc::StateOf(delegate);
}

TFC_EXPORT int tfc_counter_count() { return tfc::kNumCounters; }

TFC_EXPORT const char* tfc_counter_name(int index) {
  return (index >= 0 && index < tfc::kNumCounters) ? tfc::kCounterNames[index] : nullptr;
}

// Returns -1 for a pointer that is not one of our delegates.
TFC_EXPORT int64_t tfc_delegate_counter(const void* delegate, int index) {
  const tfc::DelegateState* state = tfc::StateOf(delegate);
  if (state == nullptr || index < 0 || index >= tfc::kNumCounters) return -1;
  return state->counters[index].load();
}

TFC_EXPORT int tfc_node_info_size() { return static_cast<int>(sizeof(TfcNodeInfo)); }

TFC_EXPORT int tfc_delegate_node_count(const void* delegate) {
  tfc::DelegateState* state = tfc::StateOf(delegate);
  if (state == nullptr) return -1;
  std::lock_guard<std::mutex> lock(state->nodes_mutex);
  return static_cast<int>(state->nodes.size());
}

TFC_EXPORT int tfc_delegate_node(const void* delegate, int index, TfcNodeInfo* info) {
  tfc::DelegateState* state = tfc::StateOf(delegate);
  if (state == nullptr || info == nullptr) return -1;
  std::lock_guard<std::mutex> lock(state->nodes_mutex);
  if (index < 0 || index >= static_cast<int>(state->nodes.size())) return -1;
  *info = state->nodes[index];
  return 0;
}

TFC_EXPORT const char* tfc_delegate_isa(const void* delegate) {
  const tfc::DelegateState* state = tfc::StateOf(delegate);
  return state == nullptr ? nullptr : tfc::IsaName(state->options.isa);
}

TFC_EXPORT const char* tfc_best_isa() { return tfc::IsaName(tfc::DetectIsa()); }

TFC_EXPORT const char* tfc_host() { return tfc::HostName(tfc::DetectHost()); }
