/*
 * A tiny stand-in for libnvidia-ml.so.1: two GPUs, a handful of NVML functions, so that the
 * REAL pynvml ctypes layer (symbol lookup, argument passing, structs, the two-call list
 * protocol, error codes) runs against C code. Built by tests/collectors/test_nvml_stub.py with
 *
 *     gcc -shared -fPIC -o libnvidia-ml.so.1 stub.c
 *
 * and loaded through LD_LIBRARY_PATH (pynvml does CDLL("libnvidia-ml.so.1")).
 *
 * GPU 0: "NVIDIA H100 80GB HBM3", 80 GiB, 20 GiB used (v2), 88 % busy, 312.5 W, one compute
 *        process: the calling process itself (getpid()), 2 GiB, SM share 37 %.
 * GPU 1: "NVIDIA A100-SXM4-40GB", 40 GiB, 512 MiB used, idle, power NOT_SUPPORTED, no process,
 *        no utilization samples (NOT_FOUND).
 * Absent on purpose (pynvml raises FunctionNotFound): the GPM API, nvmlDeviceGetTemperatureV,
 * nvmlDeviceGetProcessesUtilizationInfo. MIG mode answers NOT_SUPPORTED.
 */
#include <stddef.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

typedef int nvmlReturn_t;
enum {
    NVML_SUCCESS = 0,
    NVML_ERROR_UNINITIALIZED = 1,
    NVML_ERROR_INVALID_ARGUMENT = 2,
    NVML_ERROR_NOT_SUPPORTED = 3,
    NVML_ERROR_NOT_FOUND = 6,
    NVML_ERROR_INSUFFICIENT_SIZE = 7,
    NVML_ERROR_ARGUMENT_VERSION_MISMATCH = 25,
};
#define NVML_CLOCK_SM 1
#define NVML_TEMPERATURE_GPU 0
#define NVML_MEMORY_V2 0x02000028u
#define GIB (1024ull * 1024ull * 1024ull)
#define MIB (1024ull * 1024ull)

typedef struct {
    int index;
    const char *uuid;
    const char *name;
    unsigned long long total, reserved, used;
    unsigned int util, power_mw, sm_clock, temperature;
    unsigned long long energy_mj;
    int has_power, has_process;
} stub_gpu_t;

typedef stub_gpu_t *nvmlDevice_t;

typedef struct { unsigned int gpu, memory; } nvmlUtilization_t;
typedef struct {
    unsigned int version;
    unsigned long long total, reserved, free, used;
} nvmlMemory_v2_t;
typedef struct {
    unsigned int pid;
    unsigned long long usedGpuMemory;
    unsigned int gpuInstanceId, computeInstanceId;
} nvmlProcessInfo_t;
typedef struct {
    unsigned int pid;
    unsigned long long timeStamp;
    unsigned int smUtil, memUtil, encUtil, decUtil;
} nvmlProcessUtilizationSample_t;

static stub_gpu_t gpus[2] = {
    {0, "GPU-5b1d0c2e-0000-4000-8000-stub00000000", "NVIDIA H100 80GB HBM3", 80 * GIB,
     512 * MIB, 20 * GIB, 88, 312500, 1755, 55, 1234567ull, 1, 1},
    {1, "GPU-5b1d0c2e-0001-4000-8000-stub00000001", "NVIDIA A100-SXM4-40GB", 40 * GIB,
     256 * MIB, 512 * MIB, 0, 0, 1410, 40, 7654321ull, 0, 0},
};
static int initialized = 0;

#define CHECK_INIT() do { if (!initialized) return NVML_ERROR_UNINITIALIZED; } while (0)
#define CHECK_DEV(d) do { CHECK_INIT(); if ((d) != &gpus[0] && (d) != &gpus[1]) \
    return NVML_ERROR_INVALID_ARGUMENT; } while (0)

static nvmlReturn_t copy_string(char *out, unsigned int length, const char *text) {
    if (out == NULL) return NVML_ERROR_INVALID_ARGUMENT;
    if (strlen(text) + 1 > length) return NVML_ERROR_INSUFFICIENT_SIZE;
    strcpy(out, text);
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlInitWithFlags(unsigned int flags) { (void)flags; initialized = 1; return 0; }
nvmlReturn_t nvmlInit_v2(void) { initialized = 1; return NVML_SUCCESS; }
nvmlReturn_t nvmlShutdown(void) { CHECK_INIT(); initialized = 0; return NVML_SUCCESS; }

const char *nvmlErrorString(nvmlReturn_t result) {
    switch (result) {
    case NVML_SUCCESS: return "Success";
    case NVML_ERROR_NOT_SUPPORTED: return "Not Supported";
    case NVML_ERROR_NOT_FOUND: return "Not Found";
    default: return "Unknown Error";
    }
}

nvmlReturn_t nvmlSystemGetDriverVersion(char *version, unsigned int length) {
    CHECK_INIT();
    return copy_string(version, length, "999.0.0-stub");
}

nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *count) {
    CHECK_INIT();
    *count = 2;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *device) {
    CHECK_INIT();
    if (index > 1) return NVML_ERROR_INVALID_ARGUMENT;
    *device = &gpus[index];
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t d, char *uuid, unsigned int length) {
    CHECK_DEV(d);
    return copy_string(uuid, length, d->uuid);
}

nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t d, char *name, unsigned int length) {
    CHECK_DEV(d);
    return copy_string(name, length, d->name);
}

nvmlReturn_t nvmlDeviceGetMigMode(nvmlDevice_t d, unsigned int *current, unsigned int *pending) {
    CHECK_DEV(d);
    (void)current; (void)pending;
    return NVML_ERROR_NOT_SUPPORTED;
}

nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t d, nvmlMemory_v2_t *memory) {
    CHECK_DEV(d);
    if (memory->version != NVML_MEMORY_V2) return NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
    memory->total = d->total;
    memory->reserved = d->reserved;
    memory->used = d->used;
    memory->free = d->total - d->reserved - d->used;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t d, nvmlUtilization_t *utilization) {
    CHECK_DEV(d);
    utilization->gpu = d->util;
    utilization->memory = d->util / 2;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t d, unsigned int *power) {
    CHECK_DEV(d);
    if (!d->has_power) return NVML_ERROR_NOT_SUPPORTED;
    *power = d->power_mw;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetTotalEnergyConsumption(nvmlDevice_t d, unsigned long long *energy) {
    CHECK_DEV(d);
    *energy = d->energy_mj;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetClockInfo(nvmlDevice_t d, int type, unsigned int *clock) {
    CHECK_DEV(d);
    if (type != NVML_CLOCK_SM) return NVML_ERROR_NOT_SUPPORTED;
    *clock = d->sm_clock;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t d, int sensor, unsigned int *temperature) {
    CHECK_DEV(d);
    if (sensor != NVML_TEMPERATURE_GPU) return NVML_ERROR_NOT_SUPPORTED;
    *temperature = d->temperature;
    return NVML_SUCCESS;
}

/* The two-call protocol: a NULL array asks for the count (INSUFFICIENT_SIZE when non-zero). */
static nvmlReturn_t processes(nvmlDevice_t d, int listed, unsigned int *count,
                              nvmlProcessInfo_t *infos) {
    unsigned int n = listed ? 1 : 0;
    if (n == 0) { *count = 0; return NVML_SUCCESS; }
    if (infos == NULL || *count < n) { *count = n; return NVML_ERROR_INSUFFICIENT_SIZE; }
    memset(infos, 0, sizeof(*infos) * n);
    infos[0].pid = (unsigned int)getpid();
    infos[0].usedGpuMemory = 2 * GIB;
    infos[0].gpuInstanceId = 0xFFFFFFFFu;
    infos[0].computeInstanceId = 0xFFFFFFFFu;
    *count = n;
    (void)d;
    return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t d, unsigned int *count,
                                                     nvmlProcessInfo_t *infos) {
    CHECK_DEV(d);
    return processes(d, d->has_process, count, infos);
}

nvmlReturn_t nvmlDeviceGetGraphicsRunningProcesses_v3(nvmlDevice_t d, unsigned int *count,
                                                      nvmlProcessInfo_t *infos) {
    CHECK_DEV(d);
    return processes(d, 0, count, infos);
}

nvmlReturn_t nvmlDeviceGetProcessUtilization(nvmlDevice_t d,
                                             nvmlProcessUtilizationSample_t *samples,
                                             unsigned int *count,
                                             unsigned long long lastSeenTimeStamp) {
    struct timeval now;
    unsigned long long now_us;
    CHECK_DEV(d);
    gettimeofday(&now, NULL);
    now_us = (unsigned long long)now.tv_sec * 1000000ull + (unsigned long long)now.tv_usec;
    if (!d->has_process || now_us <= lastSeenTimeStamp) return NVML_ERROR_NOT_FOUND;
    if (samples == NULL || *count < 1) { *count = 1; return NVML_ERROR_INSUFFICIENT_SIZE; }
    memset(samples, 0, sizeof(*samples));
    samples[0].pid = (unsigned int)getpid();
    samples[0].timeStamp = now_us;
    samples[0].smUtil = 37;
    *count = 1;
    return NVML_SUCCESS;
}
