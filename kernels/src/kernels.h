// Kernel library: int8 matrix multiply with TFLite's int8 arithmetic.
//
//   out[m][n] = clamp(zp_out + requantize(sum_k (in[m][k] + input_offset) * w[n][k] + bias[n]))
//
// A plain reference kernel is the ground truth. Optimized kernels read weights
// repacked into 16(out) x 4(in) blocks, either all of them (dense) or only the
// blocks holding a non-zero (block-sparse, CSR over blocks). Every kernel has the
// signature GemmFn and computes the output columns of block rows
// [block_row_begin, block_row_end), so callers can split work across threads.
#ifndef TFCOMPRESS_KERNELS_KERNELS_H_
#define TFCOMPRESS_KERNELS_KERNELS_H_

#include <climits>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <vector>

#include "constants.h"

namespace tfc {

// Byte order inside a 64-byte block.
enum class Layout {
  kQuads,  // for o in 0..15: w[o][4c..4c+3]    (portable, NEON sdot, AVX-512 vpdpbusd)
  kPairs,  // for p in 0..1: for o in 0..15: w[o][4c+2p..4c+2p+1]   (AVX2 pmaddwd)
};

enum class Isa { kPortable = 0, kAvx2 = 1, kAvx512Vnni = 2, kNeonDot = 3 };

const char* IsaName(Isa isa);

struct AlignedFree {
  void operator()(void* p) const { std::free(p); }
};

// Weights of one layer: the model's own [n][k] int8 matrix plus our packed copy.
struct Weights {
  int n = 0;
  int k = 0;
  const int8_t* raw = nullptr;  // [n][k], owned by the model
  // Packed form, filled by Pack().
  Layout layout = Layout::kQuads;
  bool sparse = false;
  int block_rows = 0;              // ceil(n / 16)
  int block_cols = 0;              // ceil(k / 4)
  std::vector<int32_t> row_start;  // block_rows + 1 offsets into blocks (in blocks)
  std::vector<int32_t> col;        // block column of each stored block (sparse only)
  std::unique_ptr<int8_t[], AlignedFree> blocks;
  std::vector<int32_t> row_sum;  // sum_k w[n][k], padded to block_rows * 16
};

// Per-column constants for vectorized requantization (BuildRequantTables).
// 64-bit entries are stored per group of 8 columns as [c0 c2 c4 c6 c1 c3 c5 c7],
// the order of even and odd lanes of _mm256_mul_epi32.
struct RequantTables {
  std::vector<int64_t> add;    // once: 2^(s-1) + 2^62, with s = 31 - shift
  std::vector<int64_t> sub;    // once: 2^62 >> s
  std::vector<int64_t> right64;  // once: s
  std::vector<int32_t> left;   // twice: max(shift, 0)
  std::vector<int32_t> right;  // twice: max(-shift, 0)
  std::vector<int32_t> mask;   // twice: 2^right - 1
  std::vector<int32_t> multiplier;  // padded copy
  // add and right64 again, per 16 columns: 8 even then 8 odd ones (a zmm's 64-bit lanes).
  std::vector<int64_t> add16, right16;
  std::vector<int32_t> zero16;  // zero_point - (2^62 >> s) modulo 2^32, per column
};

// Requantization and clamping for each output column.
struct OutputStage {
  const int32_t* bias = nullptr;  // [n] or null
  const int32_t* multiplier = nullptr;  // [n], Q31, >= 0
  const int32_t* shift = nullptr;       // [n], TFLite sign: > 0 shifts left
  int32_t zero_point = 0;
  int32_t act_min = -128;
  int32_t act_max = 127;
  // TFLite's reference CONV_2D still rounds twice (RequantizeTwice); FULLY_CONNECTED once.
  bool round_twice = false;
  const RequantTables* tables = nullptr;  // needed by WriteRowsAvx2
};

// Fills tables for n columns, padded to whole blocks of 16.
void BuildRequantTables(const OutputStage& out, int n, RequantTables* tables);

struct GemmProblem {
  int m = 0;                       // rows (batch)
  int32_t input_offset = 0;        // minus the input zero point
  const int8_t* input = nullptr;   // m rows of k values
  int input_stride = 0;            // elements between rows
  int8_t* output = nullptr;        // m rows of n values
  int output_stride = 0;
  OutputStage out;
  // bias[n] + input_offset * row_sum[n], computed by the caller for packed
  // kernels (the reference kernel ignores it). Length block_rows * 16.
  const int32_t* folded_bias = nullptr;
};

// The stored blocks of block row br: `count` blocks of 64 bytes from `blocks`;
// block j covers inputs from 4 * cols[j] when sparse, from 4 * j when dense.
struct BlockRow {
  const int8_t* blocks;
  const int32_t* cols;  // null when dense
  int count;
};

inline BlockRow RowOf(const Weights& w, int br) {
  const int begin = w.row_start[br];
  return {w.blocks.get() + static_cast<int64_t>(begin) * kBlockBytes,
          w.sparse ? w.col.data() + begin : nullptr, w.row_start[br + 1] - begin};
}

using GemmFn = void (*)(const Weights& w, const GemmProblem& p, int block_row_begin,
                        int block_row_end);

// Packs w.raw into 16x4 blocks in `layout`; keeps only non-zero blocks if `sparse`.
void Pack(Weights& w, Layout layout, bool sparse);

// Fraction of 16x4 blocks of w.raw holding at least one non-zero.
double BlockDensity(const int8_t* raw, int n, int k);

// Folded bias: bias[n] + input_offset * row_sum[n] (wrapping int32 arithmetic).
std::vector<int32_t> FoldBias(const Weights& w, const int32_t* bias, int32_t input_offset);

// TFLite's requantization with a single rounding.
inline int32_t Requantize(int32_t acc, int32_t multiplier, int32_t shift) {
  const int total_shift = 31 - shift;
  const int64_t round = int64_t{1} << (total_shift - 1);
  return static_cast<int32_t>((static_cast<int64_t>(acc) * multiplier + round) >> total_shift);
}

// The older gemmlowp-style requantization: a rounding doubling high multiply,
// then a rounding right shift.
inline int32_t RequantizeTwice(int32_t acc, int32_t multiplier, int32_t shift) {
  const int left = shift > 0 ? shift : 0;
  const int right = shift > 0 ? 0 : -shift;
  const int32_t a = static_cast<int32_t>(static_cast<uint32_t>(acc) << left);
  int32_t high;
  if (a == multiplier && a == INT32_MIN) {
    high = INT32_MAX;
  } else {
    const int64_t product = static_cast<int64_t>(a) * multiplier;
    const int64_t nudge = product >= 0 ? (1 << 30) : (1 - (1 << 30));
    high = static_cast<int32_t>((product + nudge) / (int64_t{1} << 31));
  }
  const int32_t mask = static_cast<int32_t>((int64_t{1} << right) - 1);
  const int32_t remainder = high & mask;
  const int32_t threshold = (mask >> 1) + (high < 0 ? 1 : 0);
  return (high >> right) + (remainder > threshold ? 1 : 0);
}

// Writes clamp(zp + Requantize(acc[j] + folded_bias[j])) for `count` columns
// starting at column n0 of one output row.
void WriteRow(const int32_t* acc, const int32_t* folded_bias, const OutputStage& out, int n0,
              int count, int8_t* dst);

#if defined(__x86_64__)
// WriteRow with AVX2 (needs out.tables) for `rows` rows of 16 accumulators,
// written `dst_stride` apart.
void WriteRowsAvx2(const int32_t* acc, int rows, const int32_t* folded_bias,
                   const OutputStage& out, int n0, int count, int8_t* dst, int64_t dst_stride);
// Sign-extends k int8 values to int16 with AVX2.
void WidenAvx2(const int8_t* src, int k, int16_t* dst);
#endif

// Splits a double into a Q31 multiplier and shift exactly as TFLite's QuantizeMultiplier.
void QuantizeMultiplier(double real_multiplier, int32_t* multiplier, int32_t* shift);

// Kernels.
void GemmReference(const Weights& w, const GemmProblem& p, int block_row_begin, int block_row_end);
void GemmPortable(const Weights& w, const GemmProblem& p, int block_row_begin, int block_row_end);
#if defined(__x86_64__)
void GemmAvx2(const Weights& w, const GemmProblem& p, int block_row_begin, int block_row_end);
void GemmAvx512Vnni(const Weights& w, const GemmProblem& p, int block_row_begin,
                    int block_row_end);
#endif
#if defined(__aarch64__)
void GemmNeonDot(const Weights& w, const GemmProblem& p, int block_row_begin, int block_row_end);
#endif

// Runtime CPU dispatch.
Isa DetectIsa();                        // best ISA this CPU supports
bool IsaSupported(Isa isa);             // built in and supported by this CPU
Layout LayoutFor(Isa isa);
GemmFn KernelFor(Isa isa);              // packed kernel (dense and sparse alike)

}  // namespace tfc

#endif  // TFCOMPRESS_KERNELS_KERNELS_H_
