#ifndef X402_FUZZ_DRIVER_H
#define X402_FUZZ_DRIVER_H

#include <stddef.h>
#include <stdint.h>

/* One fuzz input: returns 0, or -1 to keep the input out of the corpus. */
typedef int (*x402_fuzz_one_input)(const uint8_t *data, size_t size);

/* Hands the process to libFuzzer (flags, corpus directories, crash artifacts). */
int x402_fuzz_run(int argc, char **argv, x402_fuzz_one_input one_input);

#endif
