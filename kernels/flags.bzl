# The kernel library's compiler and linker flags, defined once.
#
# Read by kernels/BUILD (load), by setup.py and by the tests (which parse it as Python
# literals: keep it to plain assignments of strings and lists of strings).
# tests/kernels/test_build_flags.py checks that every build takes its flags from here.

# Compiling every source (the library, and the C++ tests). ISA-specific code carries its own
# __attribute__((target(...))), so no -march flag is needed.
KERNEL_COPTS = [
    "-O3",
    "-std=c++17",
    "-fvisibility=hidden",
    "-Wall",
    "-Wextra",
    "-Wno-psabi",
]

# Linking the shared library: no libstdc++/libgcc dependency at run time; GNU ld, since gold
# leaves hidden thread_local symbols visible in .dynsym.
KERNEL_LINKOPTS = [
    "-static-libstdc++",
    "-static-libgcc",
    "-fuse-ld=bfd",
]

# The linker version script (relative to kernels/): only tflite_plugin_* and tfc_* are exported.
VERSION_SCRIPT = "src/exports.lds"
