// Cost model for kernel="auto": does a node run faster with our kernels than with the
// interpreter's default int8 kernels (XNNPACK) on this CPU?
//
// Our time for a node is modelled as our dense kernel's time times (block density +
// overhead of the sparse walk); XNNPACK's ignores zeros. So the expected speed-up is
//   ratio(dense) / (density + overhead)   (dense kernel: ratio(dense) / 1),
// where ratio(dense) = XNNPACK time / our dense time, per CPU kind, op and batch.
// The constants come from benchmarks/kernels.py on the CPUs named next to them;
// for CPU kinds never measured they are stated guesses (marked so).
#ifndef TFCOMPRESS_KERNELS_COST_MODEL_H_
#define TFCOMPRESS_KERNELS_COST_MODEL_H_

#include "kernels.h"

namespace tfc {

// What the default int8 kernels can use on this CPU.
enum class Host { kOther = 0, kAvx2 = 1, kAvx512Vnni = 2, kAmx = 3 };

Host DetectHost();
const char* HostName(Host host);

struct NodeCost {
  bool is_conv = false;
  bool is_depthwise = false;  // DEPTHWISE_CONV_2D: n channels of k taps, never block-sparse
  int rows = 1;  // GEMM rows: the batch for FULLY_CONNECTED, batch x out_h x out_w for convs
  int n = 0, k = 0;
  double block_density = 1.0;
  bool sparse_kernel = false;
};

// Expected XNNPACK time over ours: above 1 means ours is expected faster.
double ExpectedSpeedup(Isa isa, Host host, const NodeCost& node);

// kernel="auto" claims a node when its expected speed-up is at least this: the margin
// covers the model's error and the cost of leaving and re-entering a partition.
constexpr double kClaimMinSpeedup = 1.15;

// Layers with fewer multiply-adds than this cost about the same anywhere (call
// overhead dominates): expected speed-up 1.
constexpr double kMinWork = 16384;

}  // namespace tfc

#endif  // TFCOMPRESS_KERNELS_COST_MODEL_H_
