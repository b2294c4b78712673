/* A libFuzzer target: FUZZ_ENTRY names the function of entries.h to run. */
#include "entries.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  return FUZZ_ENTRY(data, size);
}
