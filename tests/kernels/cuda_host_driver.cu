// Host build of cuda/inject.cu for tests/kernels/test_cuda_host.py: the kernels'
// per-thread bodies (count_groups_body, emit_groups_body) run lane by lane on the
// CPU, with the launch's lane -> stream group mapping, so the CUDA generation code is
// checked bit for bit against the NumPy oracle on a machine without a GPU. On the host
// the IEEE helpers are plain operators, built with -ffp-contract=off (the device uses
// __dmul_rn and friends: the same roundings).
#include "inject.cu"
#define EDEN_HOST_ENTRY(SUF, WT)                                                                      \
extern "C" void eden_host_count_##SUF(EDEN_GROUP_PARAMS(WT), long long* counts) {                       \
    for (long long lane = 0; lane < g_end - g_begin; ++lane)                                           \
        eden::count_groups_body<WT>(lane, EDEN_GROUP_ARGS, counts);                                    \
}                                                                                                      \
extern "C" void eden_host_emit_##SUF(EDEN_GROUP_PARAMS(WT), const long long* offsets, long long* pos) { \
    for (long long lane = 0; lane < g_end - g_begin; ++lane)                                           \
        eden::emit_groups_body<WT>(lane, EDEN_GROUP_ARGS, offsets, pos);                               \
}                                                                                                      \
extern "C" void eden_host_emit_lane_##SUF(long long lane, EDEN_GROUP_PARAMS(WT), const long long* offsets, \
                                          long long* pos) {                                            \
    eden::emit_groups_body<WT>(lane, EDEN_GROUP_ARGS, offsets, pos);                                   \
}
EDEN_HOST_ENTRY(u8, unsigned char)
EDEN_HOST_ENTRY(u16, unsigned short)
EDEN_HOST_ENTRY(u32, unsigned int)

extern "C" void eden_host_count_events(EDEN_EVENT_PARAMS, long long* counts) {
    for (long long lane = 0; lane < n_tiles; ++lane) eden::count_events_body(lane, EDEN_EVENT_ARGS, counts);
}
extern "C" void eden_host_emit_events(EDEN_EVENT_PARAMS, const long long* offsets, long long* out) {
    for (long long lane = 0; lane < n_tiles; ++lane) eden::emit_events_body(lane, EDEN_EVENT_ARGS, offsets, out);
}
