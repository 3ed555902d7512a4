// Host build of cuda/inject.cu for tests/kernels/test_cuda_host.py: the kernels'
// per-thread bodies (count_tiles_body, emit_tiles_body) run lane by lane on the
// CPU, with the launch's lane -> tile mapping and generator scratch layout, so
// the CUDA generation code is checked bit for bit against the NumPy oracle on a
// machine without a GPU. On the host the IEEE helpers are plain operators, built
// with -ffp-contract=off (the device uses __dmul_rn and friends: the same roundings).
#include "inject.cu"
#define EDEN_HOST_ENTRY(SUF, WT)                                                                      \
extern "C" void eden_host_count_##SUF(EDEN_TILE_PARAMS(WT), long long* counts) {                        \
    for (long long lane = 0; lane < t_end - t_begin; ++lane)                                           \
        eden::count_tiles_body<WT>(lane, EDEN_TILE_ARGS, counts);                                      \
}                                                                                                      \
extern "C" void eden_host_count_lane_##SUF(long long lane, EDEN_TILE_PARAMS(WT), long long* counts) {   \
    eden::count_tiles_body<WT>(lane, EDEN_TILE_ARGS, counts);                                          \
}                                                                                                      \
extern "C" void eden_host_emit_##SUF(EDEN_TILE_PARAMS(WT), const long long* offsets, long long* idx,   \
                                     WT* mask) {                                                       \
    for (long long lane = 0; lane < t_end - t_begin; ++lane)                                           \
        eden::emit_tiles_body<WT, long long>(lane, EDEN_TILE_ARGS, offsets, idx, mask);                \
}                                                                                                      \
extern "C" void eden_host_emit_##SUF##_i32(EDEN_TILE_PARAMS(WT), const long long* offsets, int* idx,   \
                                           WT* mask) {                                                 \
    for (long long lane = 0; lane < t_end - t_begin; ++lane)                                           \
        eden::emit_tiles_body<WT, int>(lane, EDEN_TILE_ARGS, offsets, idx, mask);                      \
}
EDEN_HOST_ENTRY(u8, unsigned char)
EDEN_HOST_ENTRY(u16, unsigned short)
EDEN_HOST_ENTRY(u32, unsigned int)
