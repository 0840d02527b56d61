#include "cost_model.h"

namespace tfc {
namespace {

// XNNPACK time over our dense kernel's, for one CPU kind and our ISA.
struct DenseRatio {
  double fc_few_rows;   // FULLY_CONNECTED with fewer than kManyRows rows (a GEMV)
  double fc_many_rows;  // FULLY_CONNECTED with kManyRows rows or more
  double conv;          // CONV_2D (im2col or 1x1: a GEMM)
  double depthwise;     // DEPTHWISE_CONV_2D (its own kernel, depthwise.h)
};

constexpr int kManyRows = 8;
// DEPTHWISE_CONV_2D, XNNPACK over our depthwise kernel. Measured on the AMD EPYC Zen 5
// (AVX-512 VNNI, 2 shared cores) with the vpdpwssd kernel (depthwise_avx512.cc), one-node
// 3x3 int8 models of MobileNetV2 shapes from 48x48x32 to 3x3x960, strides 1 and 2, in the
// interpreter: 0.29-0.77x (the Zen 4 with the earlier kernel: 0.32-0.49x).
constexpr double kDepthwiseVnni = 0.5;
constexpr double kDepthwiseGuess = 0.5;

// Measured: AMD EPYC, AVX2 only (benchmarks/results/kernels-avx2.md): dense FC 0.98x at
// batch 1 and 1.00x at 32, dense convs 0.92-1.15x.
constexpr DenseRatio kAvx2OnAvx2 = {0.98, 1.0, 1.0, kDepthwiseGuess};
// Measured: Intel Xeon (Sapphire Rapids) with AVX-512 VNNI and AMX, 2 cores
// (benchmarks/results/kernels-avx512vnni-amx.md, `python -m benchmarks.kernels`, medians of
// the per-round ratios XNNPACK / ours dense, with the vpdpbusd kernel and its batch-1 GEMV):
// dense FC 1024x1024 1.08-1.10x at batch 1, 0.24-0.26x at 32 (XNNPACK uses AMX there), dense
// convs 0.21-0.29x. Depthwise not measured alone: claiming one of MobileNetV2's cost 8-46 us.
constexpr DenseRatio kVnniOnAmx = {1.05, 0.24, 0.24, kDepthwiseGuess};
// Measured: AMD EPYC Zen 5 with AVX-512 VNNI, no AMX (2 cores, shared), with the kernel
// that pairs block rows (benchmarks/results/kernels-avx512vnni-zen5.md, `python -m
// benchmarks.kernels --cpu_tag zen5`, medians of the per-round ratios XNNPACK / ours dense):
// FC 1024x1024 1.00x at batch 1 (both bandwidth-bound), 0.78x at 32. The Zen 4 with the
// earlier kernel: 1.01-1.03x and 0.77-1.07x (kernels-avx512vnni.md).
// Its conv entry is unused: convs on this CPU kind are costed by kConvVnniOnVnni below.
constexpr DenseRatio kVnniOnVnni = {1.0, 0.78, 0.5, kDepthwiseVnni};
// Guess, not measured: our NEON dot-product kernels against XNNPACK's on ARM.
constexpr DenseRatio kNeonOnArm = {1.0, 1.0, 1.0, kDepthwiseGuess};
// Guess: a lesser ISA than the CPU's best (forced with isa=...) or the portable kernel.
constexpr DenseRatio kSlower = {0.1, 0.05, 0.05, 0.05};

// Our sparse kernel's time over our dense kernel's is density + this (the walk over
// block indices; for convs also the im2col of every row). Measured on the three CPUs
// above: FC 0.01-0.11, conv 0.09-0.4 (Zen 4: FC 0.01-0.10, conv 0.15-0.35).
constexpr double kSparseOverheadFc = 0.08;
constexpr double kSparseOverheadConv = 0.25;

// CONV_2D times from the shape, in ns. XNNPACK: per output and per multiply-add. Ours: per
// output (accumulator set-up and the requantizing output stage), per multiply-add issued
// (whole 16x4 blocks, only the stored ones when sparse), per input byte (conversion to
// unsigned; im2col copies) and per row and filter tap of an im2col conv.
struct ConvTimes {
  double xnn_output, xnn_mac;
  double ours_output, ours_mac, ours_input_byte, ours_im2col_tap;
};

// Measured: AMD EPYC Zen 5, AVX-512 VNNI (2 shared cores), with the kernel that pairs block
// rows and requantizes in AVX-512: least-squares fit (relative error) to thread CPU time of
// invoke() on 93 one-conv int8 models: 1x1 convs of the MobileNetV2 shapes at alpha 0.35 and
// 1.0, 96x96 (rows 9-2304, 1-960 inputs, 8-1280 outputs), 3x3 convs (small CNN, MobileNetV2's
// first), 28x28x128 and 14x14x256, each dense and 80%/90% block-sparse. Median error of a
// predicted time 6% (ours) and 11% (XNNPACK). `python -m benchmarks.kernel_shapes --cpu_tag
// zen5` (benchmarks/results/kernels-avx512vnni-zen5-conv-shapes.md). The Zen 4 with the
// earlier kernel fit 0.15, 0.0052, 0.55, 0.0046, 0.014, 3.2 (kernels-avx512vnni-conv-shapes.md).
constexpr ConvTimes kConvVnniOnVnni = {0.087, 0.0024, 0.190, 0.0029, 0.022, 1.71};

DenseRatio RatioFor(Isa isa, Host host) {
  switch (host) {
    case Host::kAvx2: return isa == Isa::kAvx2 ? kAvx2OnAvx2 : kSlower;
    case Host::kAmx: return isa == Isa::kAvx512Vnni ? kVnniOnAmx : kSlower;
    case Host::kAvx512Vnni: return isa == Isa::kAvx512Vnni ? kVnniOnVnni : kSlower;
    default: return isa == Isa::kNeonDot ? kNeonOnArm : kSlower;
  }
}

}  // namespace

Host DetectHost() {
#if defined(__x86_64__)
  if (IsaSupported(Isa::kAvx512Vnni)) {
    return __builtin_cpu_supports("amx-int8") ? Host::kAmx : Host::kAvx512Vnni;
  }
  if (IsaSupported(Isa::kAvx2)) return Host::kAvx2;
#endif
  return Host::kOther;
}

const char* HostName(Host host) {
  switch (host) {
    case Host::kAvx2: return "avx2";
    case Host::kAvx512Vnni: return "avx512vnni";
    case Host::kAmx: return "avx512vnni+amx";
    default: return "other";
  }
}

double ExpectedSpeedup(Isa isa, Host host, const NodeCost& node) {
  if (TooSmallToMatter(node.rows, node.n, node.k)) return 1.0;
  const double work = static_cast<double>(node.rows) * node.n * node.k;
  const DenseRatio ratio = RatioFor(isa, host);
  if (node.is_depthwise) return ratio.depthwise;
  if (node.is_conv && isa == Isa::kAvx512Vnni && host == Host::kAvx512Vnni) {
    const ConvTimes& t = kConvVnniOnVnni;
    const double outputs = static_cast<double>(node.rows) * node.n;
    const double padded_n = ((node.n + kBlockRows - 1) / kBlockRows) * kBlockRows;
    const double padded_k = ((node.k + kBlockCols - 1) / kBlockCols) * kBlockCols;
    const double issued = static_cast<double>(node.rows) * padded_n * padded_k *
                          (node.sparse_kernel ? node.block_density : 1.0);
    const double xnn = outputs * t.xnn_output + work * t.xnn_mac;
    const double ours = outputs * t.ours_output + issued * t.ours_mac +
                        static_cast<double>(node.rows) * node.k * t.ours_input_byte +
                        static_cast<double>(node.rows) * node.taps * t.ours_im2col_tap;
    return xnn / ours;
  }
  const double dense = node.is_conv ? ratio.conv
                       : node.rows < kManyRows ? ratio.fc_few_rows
                                               : ratio.fc_many_rows;
  if (!node.sparse_kernel) return dense;
  const double overhead = node.is_conv ? kSparseOverheadConv : kSparseOverheadFc;
  return dense / (node.block_density + overhead);
}

}  // namespace tfc
