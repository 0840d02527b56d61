// Cost model for kernel="auto": does a node run faster with our kernels than with the
// interpreter's default int8 kernels (XNNPACK) on this CPU?
//
// FULLY_CONNECTED, and CONV_2D on CPU kinds without a measured conv model: our time is our
// dense kernel's time times (block density + overhead of the sparse walk); XNNPACK's ignores
// zeros. So the expected speed-up is
//   ratio(dense) / (density + overhead)   (dense kernel: ratio(dense) / 1),
// where ratio(dense) = XNNPACK time / our dense time, per CPU kind, op and batch.
// CONV_2D where it was measured (Zen 5): both times from the shape, since our output stage
// and input conversion cost per output and per input byte, not per multiply-add, and
// dominate at the few input channels of MobileNet-class layers (ConvTimes in cost_model.cc).
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
  int taps = 0;  // CONV_2D through im2col: kernel height x width; 0 when rows are read directly
  double block_density = 1.0;
  bool sparse_kernel = false;
};

// Expected XNNPACK time over ours: above 1 means ours is expected faster.
double ExpectedSpeedup(Isa isa, Host host, const NodeCost& node);

// kernel="auto" claims a node when its expected speed-up is at least this: the margin
// covers the model's error (about 20% on single convs). Leaving and re-entering a
// partition costs next to nothing: on the Zen 4, a chain of 40 1x1 convs with every
// other one claimed took 0.0 +- 0.25 us per hand-off more than its nodes' own times
// (benchmarks/results/kernels-avx512vnni-conv-shapes.md), so nodes are decided alone.
constexpr double kClaimMinSpeedup = 1.2;

// Layers with fewer multiply-adds than this cost about the same anywhere (call
// overhead dominates): expected speed-up 1.
constexpr double kMinWork = 16384;

// A GEMM of rows x n x k multiply-adds below kMinWork.
inline bool TooSmallToMatter(double rows, double n, double k) { return rows * n * k < kMinWork; }

}  // namespace tfc

#endif  // TFCOMPRESS_KERNELS_COST_MODEL_H_
