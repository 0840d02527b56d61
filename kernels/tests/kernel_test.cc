// Every packed kernel (dense and block-sparse, every ISA this CPU runs) must equal
// the reference kernel bit for bit. Plain asserts; run by tests/kernels/test_cpp.py,
// also under AddressSanitizer/UndefinedBehaviorSanitizer and qemu-aarch64.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "../src/cost_model.h"
#include "../src/depthwise.h"
#include "../src/kernels.h"
#include "random_weights.h"

namespace {

int failures = 0;

// An ISA to test even though this CPU lacks it: set (to its IsaName) only by a test
// build whose kernels for that ISA are emulated in software (tests/kernels/test_cpp.py).
bool Emulated(tfc::Isa isa) {
  const char* name = std::getenv("TFC_TEST_EMULATED_ISA");
  return name != nullptr && std::string(name) == tfc::IsaName(isa);
}

void Check(bool ok, const char* what, int n, int k, int m, const char* isa, bool sparse) {
  if (ok) return;
  ++failures;
  std::fprintf(stderr, "MISMATCH %s: n=%d k=%d m=%d isa=%s sparse=%d\n", what, n, k, m, isa,
               sparse ? 1 : 0);
}

void RunCase(std::mt19937& rng, int n, int k, int m, double sparsity, bool per_channel,
             bool with_bias, int activation_case) {
  std::uniform_int_distribution<int> byte(-128, 127);
  std::vector<int8_t> raw = RandomWeights(rng, n, k, sparsity);
  const int in_stride = k + (rng() % 3);  // rows need not be contiguous
  std::vector<int8_t> input(static_cast<size_t>(m) * in_stride);
  for (auto& v : input) v = static_cast<int8_t>(byte(rng));
  std::vector<int32_t> bias(n), multiplier(n), shift(n);
  std::uniform_int_distribution<int> bias_value(-20000, 20000);
  std::uniform_real_distribution<double> scale(1e-4, 2e-2);
  const double shared_scale = scale(rng);
  for (int o = 0; o < n; ++o) {
    bias[o] = bias_value(rng);
    tfc::QuantizeMultiplier(per_channel ? scale(rng) : shared_scale, &multiplier[o], &shift[o]);
  }
  tfc::OutputStage out;
  out.bias = with_bias ? bias.data() : nullptr;
  out.multiplier = multiplier.data();
  out.shift = shift.data();
  out.zero_point = byte(rng);
  out.act_min = activation_case == 1 ? out.zero_point : -128;
  out.act_max = activation_case == 2 ? std::min(127, out.zero_point + 40) : 127;
  out.round_twice = rng() % 2 == 0;

  tfc::GemmProblem p;
  p.m = m;
  p.input_offset = -byte(rng);
  p.input = input.data();
  p.input_stride = in_stride;
  p.output_stride = n + 1;
  p.out = out;
  std::vector<int8_t> expected(static_cast<size_t>(m) * p.output_stride, 0);
  tfc::Weights ref;
  ref.n = n;
  ref.k = k;
  ref.raw = raw.data();
  p.output = expected.data();
  tfc::GemmReference(ref, p, 0, (n + 15) / 16);

  for (tfc::Isa isa : {tfc::Isa::kPortable, tfc::Isa::kAvx2, tfc::Isa::kAvx512Vnni,
                       tfc::Isa::kNeonDot}) {
    if (!tfc::IsaSupported(isa) && !Emulated(isa)) continue;
    for (bool sparse : {false, true}) {
      tfc::Weights w;
      w.n = n;
      w.k = k;
      w.raw = raw.data();
      tfc::Pack(w, tfc::LayoutFor(isa), sparse);
      std::vector<int32_t> folded = tfc::FoldBias(w, out.bias, p.input_offset);
      std::vector<int8_t> got(expected.size(), 0);
      tfc::GemmProblem q = p;
      q.output = got.data();
      q.folded_bias = folded.data();
      // x86 kernels requantize with AVX2 when given tables, else with WriteRow.
      tfc::RequantTables tables;
      if ((isa == tfc::Isa::kAvx2 || isa == tfc::Isa::kAvx512Vnni) && rng() % 4 != 0) {
        tfc::BuildRequantTables(out, n, &tables);
        q.out.tables = &tables;
      }
      // Split the block rows in two ranges, as two threads would.
      const int rows = w.block_rows;
      tfc::KernelFor(isa)(w, q, 0, rows / 2);
      tfc::KernelFor(isa)(w, q, rows / 2, rows);
      Check(got == expected, "gemm", n, k, m, tfc::IsaName(isa), sparse);
    }
  }
}

// A random DEPTHWISE_CONV_2D: every fast kernel this CPU runs equals DepthwiseReference,
// with the output lines split in two ranges as two threads would.
void RunDepthwiseCase(std::mt19937& rng) {
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  std::uniform_int_distribution<int> byte(-128, 127);
  tfc::DepthwiseProblem p;
  p.batch = pick(1, 3);
  p.in_h = pick(1, 12);
  p.in_w = pick(1, 12);
  p.in_channels = pick(1, 40);
  p.depth_multiplier = pick(1, 3);
  p.kernel_h = pick(1, 5);
  p.kernel_w = pick(1, 5);
  p.stride_h = pick(1, 3);
  p.stride_w = pick(1, 3);
  p.dilation_h = pick(1, 2);
  p.dilation_w = pick(1, 2);
  const bool same = rng() % 2 == 0;
  auto out_size = [&](int in, int filter, int stride, int dilation) {
    const int effective = (filter - 1) * dilation + 1;
    return same ? (in + stride - 1) / stride : (in + stride - effective) / stride;
  };
  p.out_h = out_size(p.in_h, p.kernel_h, p.stride_h, p.dilation_h);
  p.out_w = out_size(p.in_w, p.kernel_w, p.stride_w, p.dilation_w);
  if (p.out_h <= 0 || p.out_w <= 0) return;
  auto pad = [&](int in, int out, int filter, int stride, int dilation) {
    const int total = (out - 1) * stride + (filter - 1) * dilation + 1 - in;
    return same && total > 0 ? total / 2 : 0;
  };
  p.pad_top = pad(p.in_h, p.out_h, p.kernel_h, p.stride_h, p.dilation_h);
  p.pad_left = pad(p.in_w, p.out_w, p.kernel_w, p.stride_w, p.dilation_w);
  const int channels = p.channels();
  std::vector<int8_t> input(static_cast<size_t>(p.batch) * p.in_h * p.in_w * p.in_channels);
  std::vector<int8_t> filter(static_cast<size_t>(p.kernel_h) * p.kernel_w * channels);
  for (auto& v : input) v = static_cast<int8_t>(byte(rng));
  for (auto& v : filter) v = static_cast<int8_t>(byte(rng));
  std::vector<int32_t> bias(channels), multiplier(channels), shift(channels);
  std::uniform_real_distribution<double> scale(1e-4, 2e-2);
  for (int o = 0; o < channels; ++o) {
    bias[o] = pick(-20000, 20000);
    tfc::QuantizeMultiplier(scale(rng), &multiplier[o], &shift[o]);
  }
  p.input_offset = -byte(rng);
  p.input = input.data();
  p.filter = filter.data();
  p.out.bias = rng() % 3 != 0 ? bias.data() : nullptr;
  p.out.multiplier = multiplier.data();
  p.out.shift = shift.data();
  p.out.zero_point = byte(rng);
  const int activation = pick(0, 2);
  p.out.act_min = activation == 1 ? p.out.zero_point : -128;
  p.out.act_max = activation == 2 ? std::min(127, p.out.zero_point + 40) : 127;
  p.out.round_twice = rng() % 4 != 0;
  const int lines = p.batch * p.out_h;
  std::vector<int8_t> expected(static_cast<size_t>(lines) * p.out_w * channels);
  p.output = expected.data();
  tfc::DepthwiseReference(p, 0, lines);
  tfc::DepthwisePacked packed;
  tfc::PackDepthwise(p, &packed);
  for (tfc::Isa isa : {tfc::Isa::kPortable, tfc::Isa::kAvx2, tfc::Isa::kAvx512Vnni,
                       tfc::Isa::kNeonDot}) {
    if (!tfc::IsaSupported(isa)) continue;
    std::vector<int8_t> got(expected.size(), 0);
    tfc::DepthwiseProblem q = p;
    q.output = got.data();
    q.packed = &packed;
    tfc::DepthwiseKernelFor(isa)(q, 0, lines / 2);
    tfc::DepthwiseKernelFor(isa)(q, lines / 2, lines);
    Check(got == expected, "depthwise", channels, p.kernel_h * p.kernel_w, lines,
          tfc::IsaName(isa), false);
  }
}

void TestQuantizeMultiplier() {
  int32_t mult = 0, shift = 0;
  tfc::QuantizeMultiplier(0.5, &mult, &shift);
  Check(mult == (1 << 30) && shift == 0, "QuantizeMultiplier(0.5)", 0, 0, 0, "-", false);
  tfc::QuantizeMultiplier(1.0 - 1e-12, &mult, &shift);  // rounds up to 2^31
  Check(mult == (1 << 30) && shift == 1, "QuantizeMultiplier(~1)", 0, 0, 0, "-", false);
  tfc::QuantizeMultiplier(0.0, &mult, &shift);
  Check(mult == 0 && shift == 0, "QuantizeMultiplier(0)", 0, 0, 0, "-", false);
  // Single rounding: 3 * 0.5 = 1.5 rounds half up to 2, -1.5 to -1.
  Check(tfc::Requantize(3, 1 << 30, 0) == 2, "Requantize(3, 0.5)", 0, 0, 0, "-", false);
  Check(tfc::Requantize(-3, 1 << 30, 0) == -1, "Requantize(-3, 0.5)", 0, 0, 0, "-", false);
  Check(tfc::RequantizeTwice(-3, 1 << 30, 0) == -1, "RequantizeTwice(-3, 0.5)", 0, 0, 0, "-",
        false);
  Check(tfc::RequantizeTwice(3, 1 << 30, 0) == 2, "RequantizeTwice(3, 0.5)", 0, 0, 0, "-", false);
  // The two differ where the first rounding creates a tie: 5 * 0.5 / 2 = 1.25 rounds
  // once to 1; twice: 2.5 -> 3, then 3 / 2 = 1.5 -> 2.
  Check(tfc::Requantize(5, 1 << 30, -1) == 1, "Requantize(5, 0.25)", 0, 0, 0, "-", false);
  Check(tfc::RequantizeTwice(5, 1 << 30, -1) == 2, "RequantizeTwice(5, 0.25)", 0, 0, 0, "-",
        false);
}

// The cost model's decisions for kernel="auto" on CPU kinds this machine need not be.
void TestCostModel() {
  using tfc::Host;
  using tfc::Isa;
  auto fc = [](int rows, double density, bool sparse) {
    tfc::NodeCost node;
    node.rows = rows;
    node.n = node.k = 1024;
    node.block_density = density;
    node.sparse_kernel = sparse;
    return node;
  };
  auto conv = fc(784, 0.2, true);
  conv.is_conv = true;
  const double claim = tfc::kClaimMinSpeedup;
  // AVX2-only CPU: block-sparse layers win, dense ones are a tie (left to XNNPACK).
  Check(tfc::ExpectedSpeedup(Isa::kAvx2, Host::kAvx2, fc(1, 0.1, true)) > 3, "avx2 fc 90%", 0,
        0, 0, "avx2", true);
  Check(tfc::ExpectedSpeedup(Isa::kAvx2, Host::kAvx2, fc(1, 1.0, false)) < claim,
        "avx2 dense fc left", 0, 0, 0, "avx2", false);
  Check(tfc::ExpectedSpeedup(Isa::kAvx2, Host::kAvx2, conv) > claim, "avx2 conv 80%", 0, 0, 0,
        "avx2", true);
  // AMX CPU: XNNPACK's batch-32 GEMMs and its convs use AMX: dense GEMMs, sparse convs and
  // 80% batch-32 FCs stay with it; a 90% batch-32 FC pays (measured 1.40x), as does a batch-1
  // FC from 50% block sparsity (1.34x); a dense batch-1 FC is a tie (1.08x), left.
  Check(tfc::ExpectedSpeedup(Isa::kAvx512Vnni, Host::kAmx, fc(32, 1.0, false)) < claim,
        "amx dense batch 32 left", 0, 0, 0, "avx512vnni", false);
  Check(tfc::ExpectedSpeedup(Isa::kAvx512Vnni, Host::kAmx, fc(32, 0.2, true)) < claim,
        "amx 80% batch 32 left", 0, 0, 0, "avx512vnni", true);
  Check(tfc::ExpectedSpeedup(Isa::kAvx512Vnni, Host::kAmx, fc(32, 0.1, true)) > claim,
        "amx 90% batch 32", 0, 0, 0, "avx512vnni", true);
  Check(tfc::ExpectedSpeedup(Isa::kAvx512Vnni, Host::kAmx, conv) < claim, "amx conv left", 0, 0,
        0, "avx512vnni", true);
  Check(tfc::ExpectedSpeedup(Isa::kAvx512Vnni, Host::kAmx, fc(1, 0.2, true)) > claim,
        "amx fc 80%", 0, 0, 0, "avx512vnni", true);
  Check(tfc::ExpectedSpeedup(Isa::kAvx512Vnni, Host::kAmx, fc(1, 0.5, true)) > claim,
        "amx fc 50%", 0, 0, 0, "avx512vnni", true);
  Check(tfc::ExpectedSpeedup(Isa::kAvx512Vnni, Host::kAmx, fc(1, 1.0, false)) < claim,
        "amx dense fc left", 0, 0, 0, "avx512vnni", false);
  // AVX-512 VNNI without AMX (Zen 5): dense layers stay with XNNPACK (a tie at best);
  // block-sparse FCs and convs at 80% pay.
  Check(tfc::ExpectedSpeedup(Isa::kAvx512Vnni, Host::kAvx512Vnni, fc(1, 1.0, false)) < claim,
        "vnni dense fc left", 0, 0, 0, "avx512vnni", false);
  Check(tfc::ExpectedSpeedup(Isa::kAvx512Vnni, Host::kAvx512Vnni, fc(32, 1.0, false)) < claim,
        "vnni dense batch 32 left", 0, 0, 0, "avx512vnni", false);
  Check(tfc::ExpectedSpeedup(Isa::kAvx512Vnni, Host::kAvx512Vnni, fc(1, 0.2, true)) > 2,
        "vnni fc 80%", 0, 0, 0, "avx512vnni", true);
  Check(tfc::ExpectedSpeedup(Isa::kAvx512Vnni, Host::kAvx512Vnni, fc(32, 0.1, true)) > claim,
        "vnni 90% batch 32", 0, 0, 0, "avx512vnni", true);
  Check(tfc::ExpectedSpeedup(Isa::kAvx512Vnni, Host::kAvx512Vnni, conv) > claim, "vnni conv 80%",
        0, 0, 0, "avx512vnni", true);
  tfc::NodeCost dense_conv = fc(784, 1.0, false);
  dense_conv.is_conv = true;
  Check(tfc::ExpectedSpeedup(Isa::kAvx512Vnni, Host::kAvx512Vnni, dense_conv) < claim,
        "vnni dense conv left", 0, 0, 0, "avx512vnni", false);
  // Zen 5 convs by shape: few input channels (the output stage dominates) stay with XNNPACK
  // however sparse; many inputs at few rows pay; sparser never looks slower.
  auto pointwise = [](int rows, int n, int k, double density) {
    tfc::NodeCost node;
    node.is_conv = true;
    node.rows = rows;
    node.n = n;
    node.k = k;
    node.block_density = density;
    node.sparse_kernel = density <= 0.7;
    return node;
  };
  const Isa vnni = Isa::kAvx512Vnni;
  Check(tfc::ExpectedSpeedup(vnni, Host::kAvx512Vnni, pointwise(2304, 48, 8, 0.1)) < claim,
        "vnni 1x1 conv, 8 inputs, 90% left", 48, 8, 2304, "avx512vnni", true);
  Check(tfc::ExpectedSpeedup(vnni, Host::kAvx512Vnni, pointwise(576, 144, 24, 0.1)) < claim,
        "vnni 1x1 conv, 24 inputs, 90% left", 144, 24, 576, "avx512vnni", true);
  Check(tfc::ExpectedSpeedup(vnni, Host::kAvx512Vnni, pointwise(9, 160, 960, 0.1)) > 2,
        "vnni 1x1 conv, 960 inputs, 9 rows, 90%", 160, 960, 9, "avx512vnni", true);
  tfc::NodeCost first = pointwise(2304, 16, 9, 1.0);
  first.taps = 9;  // MobileNetV2's first conv: 3x3 on one channel, im2col
  Check(tfc::ExpectedSpeedup(vnni, Host::kAvx512Vnni, first) < claim, "vnni 3x3 conv, k 9 left",
        16, 9, 2304, "avx512vnni", false);
  for (double d = 0.05; d < 0.7; d += 0.05) {
    Check(tfc::ExpectedSpeedup(vnni, Host::kAvx512Vnni, pointwise(36, 96, 576, d)) >
              tfc::ExpectedSpeedup(vnni, Host::kAvx512Vnni, pointwise(36, 96, 576, d + 0.05)),
          "vnni conv monotone in density", 96, 576, 36, "avx512vnni", true);
  }
  // Depthwise convolutions stay with XNNPACK on the CPU kinds we measured.
  tfc::NodeCost depthwise = fc(48 * 48, 1.0, false);
  depthwise.is_conv = depthwise.is_depthwise = true;
  depthwise.n = 96;
  depthwise.k = 9;
  for (auto [isa, host] : {std::pair{Isa::kAvx512Vnni, Host::kAvx512Vnni},
                           {Isa::kAvx512Vnni, Host::kAmx}, {Isa::kAvx2, Host::kAvx2}}) {
    Check(tfc::ExpectedSpeedup(isa, host, depthwise) < claim, "depthwise left", 96, 9, 48 * 48,
          tfc::IsaName(isa), false);
  }
  // A lesser ISA than the CPU's best, and a layer too small to matter, are never claimed.
  Check(tfc::ExpectedSpeedup(Isa::kPortable, Host::kAvx2, fc(1, 0.1, true)) < claim,
        "portable left", 0, 0, 0, "portable", true);
  tfc::NodeCost tiny = fc(1, 0.1, true);
  tiny.n = 10;
  tiny.k = 100;
  Check(tfc::ExpectedSpeedup(Isa::kAvx2, Host::kAvx2, tiny) == 1.0, "tiny layer", 0, 0, 0,
        "avx2", true);
  // Sparser never looks slower.
  for (double d = 0.05; d < 1.0; d += 0.05) {
    Check(tfc::ExpectedSpeedup(Isa::kAvx2, Host::kAvx2, fc(1, d, true)) >
              tfc::ExpectedSpeedup(Isa::kAvx2, Host::kAvx2, fc(1, d + 0.05, true)),
          "monotone in density", 0, 0, 0, "avx2", true);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const int cases = argc > 1 ? std::atoi(argv[1]) : 200;
  std::mt19937 rng(argc > 2 ? std::atoi(argv[2]) : 1234);
  TestQuantizeMultiplier();
  TestCostModel();
  std::uniform_int_distribution<int> dim(1, 70);
  std::uniform_int_distribution<int> batch(1, 19);
  const double sparsities[] = {0.0, 0.5, 0.8, 0.9, 1.0};
  for (int c = 0; c < cases; ++c) {
    // One case in four is a single row: the AVX-512 kernel's GEMV path.
    const int n = dim(rng), k = dim(rng), m = c % 4 == 1 ? 1 : batch(rng);
    RunCase(rng, n, k, m, sparsities[c % 5], c % 2 == 0, c % 3 != 0, c % 3);
  }
  for (int c = 0; c < cases; ++c) RunDepthwiseCase(rng);
  RunCase(rng, 1024, 1024, 1, 0.8, false, true, 0);
  RunCase(rng, 256, 1152, 33, 0.9, true, true, 1);
  std::printf("isa=%s cases=%d failures=%d\n", tfc::IsaName(tfc::DetectIsa()), cases + 2,
              failures);
  return failures == 0 ? 0 : 1;
}
