// The library's own C API (the `tfc_*` functions exported next to the TFLite plugin entry
// points), read from Python through ctypes by tfcompress/kernels/library.py.
//
// A `delegate` argument is the pointer tflite_plugin_create_delegate returned; functions
// given any other pointer return -1 or NULL.
#ifndef TFCOMPRESS_KERNELS_C_API_H_
#define TFCOMPRESS_KERNELS_C_API_H_

#include <cstdint>

#define TFC_EXPORT extern "C" __attribute__((visibility("default")))

// One node the delegate could run, claimed or left to the interpreter's own kernels.
// The strings are static.
struct TfcNodeInfo {
  int32_t node;             // index of the node in the interpreter's execution plan
  int32_t n, k;             // weights as a GEMM: n outputs x k inputs (conv: k = kh * kw * cin;
                            // depthwise: n channels of k = kh * kw taps)
  int32_t rows;             // GEMM rows when prepared (FC: batch; convs: batch x out_h x out_w)
  int32_t claimed;          // 1: claimed; 0: left to the interpreter's kernels
  double block_density;     // fraction of the 16x4 weight blocks holding a non-zero
  double expected_speedup;  // the cost model's default-kernel time over ours (cost_model.h)
  const char* op;           // "FULLY_CONNECTED", "CONV_2D" or "DEPTHWISE_CONV_2D"
  const char* kernel;       // the kernel it runs (or would): "reference", "dense", "sparse"
                            // (depthwise: "reference" or "dense")
  const char* isa;          // the packed kernel's ISA; NULL for the reference kernel
};

// Counters: claimed/declined nodes, partitions, invocations, kernels chosen.
TFC_EXPORT int tfc_counter_count();
TFC_EXPORT const char* tfc_counter_name(int index);
TFC_EXPORT int64_t tfc_delegate_counter(const void* delegate, int index);

// The nodes the delegate could run, claimed or not, in the order it saw them (a node
// appears again each time the interpreter re-applies the delegate, as the counters
// count it again).
TFC_EXPORT int tfc_node_info_size();  // sizeof(TfcNodeInfo): callers check their layout
TFC_EXPORT int tfc_delegate_node_count(const void* delegate);
// Copies node `index` to `info`; returns 0, or -1 for a bad delegate or index.
TFC_EXPORT int tfc_delegate_node(const void* delegate, int index, TfcNodeInfo* info);

// ISA names: "avx512vnni", "avx2", "neondot" or "portable".
TFC_EXPORT const char* tfc_delegate_isa(const void* delegate);
TFC_EXPORT const char* tfc_best_isa();
// What the default int8 kernels can use on this CPU, as the cost model sees it:
// "avx512vnni+amx", "avx512vnni", "avx2" or "other".
TFC_EXPORT const char* tfc_host();

#endif  // TFCOMPRESS_KERNELS_C_API_H_
