/* fuzz.h - the libFuzzer entry point every fuzz target defines, declared once so that targets
 * build with -Wmissing-prototypes and link with either libFuzzer or replay_main.c.
 */
#ifndef STSGATE_FUZZ_H
#define STSGATE_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
