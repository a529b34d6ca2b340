// The compiled helper (CMake target seemore::precompiled): every
// instantiation listed in seemore/precompiled.hpp, for float and double, in
// one object that programs link instead of compiling them in each of their
// translation units.
#define SEEMORE_PRECOMPILED_BUILD 1
#include <seemore/vlm.hpp>

namespace seemore {
SEEMORE_INSTANTIATE(template, float)
SEEMORE_INSTANTIATE(template, double)
}  // namespace seemore
