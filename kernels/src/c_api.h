// The library's own C API (the `tfc_*` functions exported next to the TFLite plugin entry
// points), read from Python through ctypes by tfcompress/kernels/library.py.
//
// A `delegate` argument is the pointer tflite_plugin_create_delegate returned; functions
// given any other pointer return -1 or NULL.
#ifndef TFCOMPRESS_KERNELS_C_API_H_
#define TFCOMPRESS_KERNELS_C_API_H_

#include <cstdint>

#define TFC_EXPORT extern "C" __attribute__((visibility("default")))

// One claimed node, as the delegate set it up. The strings are static.
struct TfcNodeInfo {
  int32_t node;          // index of the node in the interpreter's execution plan
  int32_t n, k;          // weights as a GEMM: n outputs x k inputs (a conv: k = kh * kw * cin)
  double block_density;  // fraction of the 16x4 weight blocks holding a non-zero
  const char* op;        // "FULLY_CONNECTED" or "CONV_2D"
  const char* kernel;    // "reference", "dense" or "sparse"
  const char* isa;       // the packed kernel's ISA; NULL for the reference kernel
};

// Counters: claimed/declined nodes, partitions, invocations, kernels chosen.
TFC_EXPORT int tfc_counter_count();
TFC_EXPORT const char* tfc_counter_name(int index);
TFC_EXPORT int64_t tfc_delegate_counter(const void* delegate, int index);

// The nodes claimed so far, in the order they were set up (a node appears again each
// time the interpreter re-applies the delegate, as the counters count it again).
TFC_EXPORT int tfc_node_info_size();  // sizeof(TfcNodeInfo): callers check their layout
TFC_EXPORT int tfc_delegate_node_count(const void* delegate);
// Copies node `index` to `info`; returns 0, or -1 for a bad delegate or index.
TFC_EXPORT int tfc_delegate_node(const void* delegate, int index, TfcNodeInfo* info);

// ISA names: "avx512vnni", "avx2", "neondot" or "portable".
TFC_EXPORT const char* tfc_delegate_isa(const void* delegate);
TFC_EXPORT const char* tfc_best_isa();

#endif  // TFCOMPRESS_KERNELS_C_API_H_
