// expect: wshub compile-fail sanity
// Proves the compile-fail mechanism itself: this file includes wshub (so the
// include path and dependencies are in place) and must stop at the static_assert
// below, with its message in the compiler output.
#include <wshub/wshub.hpp>

template <class T>
inline constexpr bool false_v = false;

static_assert(false_v<int>, "wshub compile-fail sanity");

int main() { return 0; }
