// Writing one block row's 16 int8 outputs (SSE2, so every x86 kernel can call it).
#ifndef TFCOMPRESS_KERNELS_BLOCK_STORE_X86_H_
#define TFCOMPRESS_KERNELS_BLOCK_STORE_X86_H_

#include <emmintrin.h>

#include <cstdint>
#include <cstring>

#include "constants.h"

namespace tfc::x86 {

// Stores the first `count` (at most kBlockRows) of the 16 bytes at dst; only those.
inline void StoreBlockRow(__m128i bytes, int count, int8_t* dst) {
  if (count == kBlockRows) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), bytes);
  } else {
    alignas(16) int8_t tail[kBlockRows];
    _mm_store_si128(reinterpret_cast<__m128i*>(tail), bytes);
    std::memcpy(dst, tail, count);
  }
}

}  // namespace tfc::x86

#endif  // TFCOMPRESS_KERNELS_BLOCK_STORE_X86_H_
