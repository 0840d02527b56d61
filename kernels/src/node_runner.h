// What the delegate needs of one claimed node, whatever its op: Layer (a GEMM:
// FULLY_CONNECTED, CONV_2D) and DepthwiseLayer (DEPTHWISE_CONV_2D).
#ifndef TFCOMPRESS_KERNELS_NODE_RUNNER_H_
#define TFCOMPRESS_KERNELS_NODE_RUNNER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "thread_pool.h"

namespace tfc {

class NodeRunner {
 public:
  virtual ~NodeRunner() = default;
  // The output shape for this input shape (possibly with zero elements), or empty when
  // the input shape does not fit the node.
  virtual std::vector<int> Resize(const std::vector<int>& input_shape, bool keep_num_dims) = 0;
  // Work items of the last Resize; 0 means an empty output.
  virtual int rows() const = 0;
  virtual void Run(const int8_t* input, int8_t* output, ThreadPool& pool) const = 0;
  virtual bool sparse() const = 0;
  virtual bool reference() const = 0;
  virtual std::string Describe() const = 0;
};

}  // namespace tfc

#endif  // TFCOMPRESS_KERNELS_NODE_RUNNER_H_
