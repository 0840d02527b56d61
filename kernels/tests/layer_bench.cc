// Times one FULLY_CONNECTED Layer::Run alone (no interpreter, no Python): the kernel's
// share of an invoke(). Not run by the tests; build and run by hand:
//
//   g++ -O3 -std=c++17 -Ikernels/src kernels/tests/layer_bench.cc
//       $(ls kernels/src/*.cc | grep -v delegate.cc) -o /tmp/layer_bench -lpthread
//   /tmp/layer_bench [rows=1] [block_sparsity=0.9] [isa=avx512vnni] [n=1024] [k=1024]
//                    [threads=1]
//
// Prints the min, 10th percentile and median of 20,000 (rows < 8) or 2,000 timed calls,
// and a hash of the output so that two builds can be checked to compute the same bits.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "layer.h"
#include "random_weights.h"
#include "thread_pool.h"

int main(int argc, char** argv) {
  const int m = argc > 1 ? std::atoi(argv[1]) : 1;
  const double sparsity = argc > 2 ? std::atof(argv[2]) : 0.9;
  const std::string isa_name = argc > 3 ? argv[3] : "avx512vnni";
  const int n = argc > 4 ? std::atoi(argv[4]) : 1024;
  const int k = argc > 5 ? std::atoi(argv[5]) : 1024;
  const int threads = argc > 6 ? std::atoi(argv[6]) : 1;
  tfc::Isa isa = tfc::Isa::kPortable;
  for (tfc::Isa i : {tfc::Isa::kAvx2, tfc::Isa::kAvx512Vnni, tfc::Isa::kNeonDot}) {
    if (isa_name == tfc::IsaName(i)) isa = i;
  }
  if (!tfc::IsaSupported(isa)) {
    std::fprintf(stderr, "isa %s is not supported here\n", isa_name.c_str());
    return 1;
  }
  // Weights with whole 16x4 blocks zeroed at random, as the benchmark's layers.
  std::mt19937 rng(0);
  const std::vector<int8_t> w = RandomWeights(rng, n, k, sparsity);
  const std::vector<int32_t> bias(n, 100);
  tfc::Layer layer(false, w.data(), n, k, bias.data(), {0.002}, -3, 5, -128, 127,
                   tfc::ConvGeometry{});
  layer.SelectKernel(sparsity > 0 ? tfc::KernelChoice::kSparse : tfc::KernelChoice::kDense, isa);
  layer.Resize({m, k}, false);
  std::vector<int8_t> input(static_cast<size_t>(m) * k), output(static_cast<size_t>(m) * n);
  std::uniform_int_distribution<int> value(-127, 127);
  for (auto& x : input) x = static_cast<int8_t>(value(rng));
  tfc::ThreadPool pool(threads);
  const int calls = m < 8 ? 20000 : 2000;
  for (int i = 0; i < calls / 10; ++i) layer.Run(input.data(), output.data(), pool);
  std::vector<double> us;
  for (int i = 0; i < calls; ++i) {
    const auto start = std::chrono::steady_clock::now();
    layer.Run(input.data(), output.data(), pool);
    const auto stop = std::chrono::steady_clock::now();
    us.push_back(std::chrono::duration<double, std::micro>(stop - start).count());
  }
  std::sort(us.begin(), us.end());
  unsigned hash = 0;
  for (int8_t y : output) hash = hash * 31 + static_cast<uint8_t>(y);
  std::printf("%s, rows %d, threads %d: min %.3f us, p10 %.3f, median %.3f (output hash %u)\n",
              layer.Describe().c_str(), m, threads, us[0], us[us.size() / 10], us[us.size() / 2],
              hash);
  return 0;
}
