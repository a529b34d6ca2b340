// Shared by the libFuzzer harnesses. A harness may throw seemore::Error (a
// clear refusal is the right answer to a bad file); any other exception
// escapes LLVMFuzzerTestOneInput, aborts, and is a finding. So is a broken
// invariant, checked with SEEMORE_FUZZ_ASSERT.
#pragma once

#include <seemore/config.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#define SEEMORE_FUZZ_ASSERT(cond)                                                   \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      std::fprintf(stderr, "invariant broken: %s (%s:%d)\n", #cond, __FILE__, __LINE__); \
      std::abort();                                                                 \
    }                                                                               \
  } while (0)

namespace seemore::fuzz {

// Runs `body` on the input as a string; a seemore::Error is an accepted refusal.
template <class F>
int run(const uint8_t* data, size_t size, F&& body) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  try {
    body(bytes);
  } catch (const Error& e) {
    // Every refusal must say something.
    SEEMORE_FUZZ_ASSERT(e.what() != nullptr && e.what()[0] != '\0');
  }
  return 0;
}

}  // namespace seemore::fuzz
