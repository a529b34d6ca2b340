// seemore/device.hpp — where a tensor's memory lives.
//
// Device::cuda() exists in every build so that user code is the same in both
// modes; in a build without CUDA it throws "[seemore] built without CUDA".
#pragma once

#include <seemore/config.hpp>

#include <string>

namespace seemore {

enum class DeviceType { CPU, CUDA };

class Device {
 public:
  constexpr Device() = default;
  static constexpr Device cpu() { return Device(DeviceType::CPU, 0); }
  static Device cuda(int index = 0) {
#if SEEMORE_HAS_CUDA
    SEEMORE_CHECK(index >= 0, "Device::cuda: negative device index ", index);
    return Device(DeviceType::CUDA, index);
#else
    (void)index;
    detail::fail("built without CUDA (Device::cuda needs a translation unit compiled by nvcc)");
#endif
  }
  // Parses "cpu", "cuda", "cuda:1".
  static Device parse(const std::string& s) {
    if (s == "cpu") return cpu();
    if (s == "cuda") return cuda(0);
    if (s.rfind("cuda:", 0) == 0) {
      try {
        return cuda(std::stoi(s.substr(5)));
      } catch (const std::invalid_argument&) {
      }
    }
    detail::fail("unknown device '", s, "' (expected cpu, cuda or cuda:N)");
  }

  constexpr DeviceType type() const { return type_; }
  constexpr int index() const { return index_; }
  constexpr bool is_cpu() const { return type_ == DeviceType::CPU; }
  constexpr bool is_cuda() const { return type_ == DeviceType::CUDA; }
  std::string str() const { return is_cpu() ? "cpu" : "cuda:" + std::to_string(index_); }

  friend constexpr bool operator==(Device a, Device b) { return a.type_ == b.type_ && a.index_ == b.index_; }
  friend constexpr bool operator!=(Device a, Device b) { return !(a == b); }

 private:
  constexpr Device(DeviceType t, int i) : type_(t), index_(i) {}
  DeviceType type_ = DeviceType::CPU;
  int index_ = 0;
};

}  // namespace seemore
