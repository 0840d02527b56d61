// Depthwise convolution with TFLite's int8 arithmetic (DEPTHWISE_CONV_2D):
//
//   out[b][y][x][c * dm + m] = clamp(zp_out + requantize(bias[o] +
//       sum_{ky,kx in bounds} (in[b][iy][ix][c] + input_offset) * filter[ky][kx][o]))
//
// with o = c * dm + m, iy = y * stride_h - pad_top + ky * dilation_h (ix alike); taps
// outside the input are skipped, as in TFLite. Both kernels compute the output lines
// [line_begin, line_end) of the batch x out_h lines, so callers can split work.
#ifndef TFCOMPRESS_KERNELS_DEPTHWISE_H_
#define TFCOMPRESS_KERNELS_DEPTHWISE_H_

#include <cstdint>
#include <vector>

#include "kernels.h"

namespace tfc {

// The fast kernels' copy of a filter: channels padded to groups of kLanes with zeros,
// widened to int16; the bias padded alike; requantization tables (BuildRequantTables).
constexpr int kLanes = 16;
// Filter heights the fast kernels take (taller ones run the reference kernel).
constexpr int kMaxKernelH = 16;
struct DepthwisePacked {
  std::vector<int16_t> filter;  // [kernel_h][kernel_w][padded channels]
  std::vector<int32_t> bias;    // [padded channels], zeros without a bias
  RequantTables tables;
  // For the AVX-512 kernel: each weight zero-extended from int16 into an int32 lane (a
  // vpdpwssd pair (w, 0)), and bias + input_offset * the sum of the channel's weights.
  std::vector<int32_t> filter_pairs;  // [kernel_h][kernel_w][padded channels]
  std::vector<int32_t> folded_bias;   // [padded channels]
};

struct DepthwiseProblem {
  int batch = 0, in_h = 0, in_w = 0, in_channels = 0, depth_multiplier = 1;
  int kernel_h = 1, kernel_w = 1, stride_h = 1, stride_w = 1, dilation_h = 1, dilation_w = 1;
  int pad_top = 0, pad_left = 0, out_h = 0, out_w = 0;
  int32_t input_offset = 0;         // minus the input zero point
  const int8_t* input = nullptr;    // [batch][in_h][in_w][in_channels]
  const int8_t* filter = nullptr;   // [kernel_h][kernel_w][in_channels * depth_multiplier]
  int8_t* output = nullptr;         // [batch][out_h][out_w][in_channels * depth_multiplier]
  OutputStage out;                  // per output channel; bias may be null
  const DepthwisePacked* packed = nullptr;  // PackDepthwise's, needed by the fast kernels
  int channels() const { return in_channels * depth_multiplier; }
};

using DepthwiseFn = void (*)(const DepthwiseProblem& p, int line_begin, int line_end);

// Fills `packed` from p.filter, p.out (bias, multipliers, shifts) and the geometry.
void PackDepthwise(const DepthwiseProblem& p, DepthwisePacked* packed);

// Plain loops in TFLite's order: the ground truth.
void DepthwiseReference(const DepthwiseProblem& p, int line_begin, int line_end);

// Channels innermost with int32 accumulators for a whole output line, vectorized by the
// compiler for the ISA given (portable, avx2, avx512vnni; others run the portable one).
DepthwiseFn DepthwiseKernelFor(Isa isa);
#if defined(__x86_64__)
// The AVX-512 VNNI kernel (depthwise_avx512.cc): input rows padded with the input zero point
// and widened to int32 once, every tap one vpdpwssd per 16 channels, 8 output pixels at once.
void DepthwiseAvx512Vnni(const DepthwiseProblem& p, int line_begin, int line_end);
#endif
// The ISA DepthwiseKernelFor(isa) actually runs.
Isa DepthwiseIsa(Isa isa);

}  // namespace tfc

#endif  // TFCOMPRESS_KERNELS_DEPTHWISE_H_
