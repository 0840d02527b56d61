// Runtime CPU dispatch: the best kernel this CPU runs, with a portable fallback.
#include "kernels.h"

#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#endif

namespace tfc {

const char* IsaName(Isa isa) {
  switch (isa) {
    case Isa::kAvx2: return "avx2";
    case Isa::kAvx512Vnni: return "avx512vnni";
    case Isa::kNeonDot: return "neondot";
    default: return "portable";
  }
}

bool IsaSupported(Isa isa) {
  switch (isa) {
    case Isa::kPortable: return true;
#if defined(__x86_64__)
    case Isa::kAvx2: return __builtin_cpu_supports("avx2");
    case Isa::kAvx512Vnni:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vnni");
#endif
#if defined(__aarch64__) && defined(__linux__)
    case Isa::kNeonDot: return (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
#endif
    default: return false;
  }
}

Isa DetectIsa() {
  for (Isa isa : {Isa::kAvx512Vnni, Isa::kAvx2, Isa::kNeonDot}) {
    if (IsaSupported(isa)) return isa;
  }
  return Isa::kPortable;
}

Layout LayoutFor(Isa isa) {
  return isa == Isa::kAvx2 ? Layout::kPairs : Layout::kQuads;
}

GemmFn KernelFor(Isa isa) {
  switch (isa) {
#if defined(__x86_64__)
    case Isa::kAvx2: return GemmAvx2;
    case Isa::kAvx512Vnni: return GemmAvx512Vnni;
#endif
#if defined(__aarch64__)
    case Isa::kNeonDot: return GemmNeonDot;
#endif
    default: return GemmPortable;
  }
}

}  // namespace tfc
