// GPU tests. A tiny self-contained runner (not Catch2: its v2 header does not
// go through nvcc cleanly) that exits 77 when no GPU is present.
#include <seemore/kernels/common.cuh>
#include <seemore/vlm.hpp>

#include <cstdio>
#include <functional>
#include <vector>

using namespace seemore;

namespace {
int failures = 0;
#define EXPECT(cond)                                                      \
  do {                                                                    \
    if (!(cond)) {                                                        \
      std::printf("FAILED %s:%d: %s\n", __FILE__, __LINE__, #cond);       \
      ++failures;                                                         \
    }                                                                     \
  } while (0)

void test_round_trip() {
  Generator g(1);
  auto h = Tensor<float>::randn({7, 65}, g);
  auto d = h.to(Device::cuda());
  EXPECT(d.device().is_cuda());
  auto back = d.to(Device::cpu());
  EXPECT(back.to_vector() == h.to_vector());
  auto d2 = d.clone();
  EXPECT(d2.to_vector() == h.to_vector());
}
}  // namespace

int main() {
  if (!backend::cuda::device_available()) {
    std::printf("skipped: no GPU\n");
    return 77;
  }
  std::vector<std::pair<const char*, std::function<void()>>> tests = {{"round_trip", test_round_trip}};
  for (auto& [name, fn] : tests) {
    try {
      fn();
      std::printf("ran %s\n", name);
    } catch (const std::exception& e) {
      std::printf("FAILED %s: %s\n", name, e.what());
      ++failures;
    }
  }
  std::printf("%d passed, %d failed\n", int(tests.size()) - (failures ? 1 : 0), failures ? 1 : 0);
  return failures ? 1 : 0;
}
