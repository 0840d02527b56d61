// Random int8 weights with whole 16x4 blocks zeroed, shared by the kernel test and the
// layer benchmark.
#ifndef TFCOMPRESS_KERNELS_TESTS_RANDOM_WEIGHTS_H_
#define TFCOMPRESS_KERNELS_TESTS_RANDOM_WEIGHTS_H_

#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

// An n x k row-major matrix of values in [-127, 127] where each 16x4 block is zero with
// probability `sparsity`.
inline std::vector<int8_t> RandomWeights(std::mt19937& rng, int n, int k, double sparsity) {
  std::vector<int8_t> w(static_cast<size_t>(n) * k);
  std::uniform_int_distribution<int> value(-127, 127);
  std::bernoulli_distribution drop(sparsity);
  for (int br = 0; br < (n + 15) / 16; ++br) {
    for (int bc = 0; bc < (k + 3) / 4; ++bc) {
      const bool zero = drop(rng);
      for (int o = br * 16; o < std::min(n, br * 16 + 16); ++o)
        for (int i = bc * 4; i < std::min(k, bc * 4 + 4); ++i)
          w[static_cast<size_t>(o) * k + i] = zero ? 0 : static_cast<int8_t>(value(rng));
    }
  }
  return w;
}

#endif  // TFCOMPRESS_KERNELS_TESTS_RANDOM_WEIGHTS_H_
