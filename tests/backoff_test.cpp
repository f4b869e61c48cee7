// detail::Backoff: capped exponential delays with full jitter.
#include <catch2/catch.hpp>

#include "wshub/detail/backoff.hpp"

using wshub::detail::Backoff;
using namespace std::chrono_literals;

TEST_CASE("the ceiling doubles up to the cap, and reset starts over", "[backoff]") {
    Backoff b(100ms, 1000ms, 42);
    CHECK(b.ceiling() == 100ms);
    std::vector<std::chrono::milliseconds> ceilings;
    for (int i = 0; i < 8; ++i) {
        ceilings.push_back(b.ceiling());
        const auto delay = b.next();
        CHECK(delay >= 0ms);
        CHECK(delay <= ceilings.back());
    }
    CHECK(ceilings == std::vector<std::chrono::milliseconds>{100ms, 200ms, 400ms, 800ms, 1000ms, 1000ms, 1000ms, 1000ms});
    b.reset();
    CHECK(b.ceiling() == 100ms);
    for (int i = 0; i < 1000; ++i) b.next();  // never overflows
    CHECK(b.ceiling() == 1000ms);
}

TEST_CASE("delays are jittered over the whole range", "[backoff]") {
    Backoff b(1000ms, 1000ms, 7);
    std::chrono::milliseconds low = 1000ms, high = 0ms;
    for (int i = 0; i < 500; ++i) {
        const auto d = b.next();
        low = std::min(low, d);
        high = std::max(high, d);
    }
    CHECK(low < 100ms);
    CHECK(high > 900ms);
}
