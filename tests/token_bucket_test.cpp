// detail::TokenBucket: the per-connection publish budget, with time passed in.
#include <catch2/catch.hpp>

#include "wshub/detail/token_bucket.hpp"

using wshub::detail::TokenBucket;
using namespace std::chrono_literals;

TEST_CASE("a burst is allowed, then the average rate", "[token_bucket]") {
    const auto t0 = TokenBucket::clock::time_point{} + 1h;
    TokenBucket bucket(10.0, 5.0, t0);
    for (int i = 0; i < 5; ++i) CHECK(bucket.try_take(t0));
    CHECK_FALSE(bucket.try_take(t0));
    CHECK_FALSE(bucket.try_take(t0 + 50ms));  // half a token
    CHECK(bucket.try_take(t0 + 100ms));       // one token refilled
    CHECK_FALSE(bucket.try_take(t0 + 100ms));
    // Refill never exceeds the burst.
    int taken = 0;
    while (bucket.try_take(t0 + 1h)) ++taken;
    CHECK(taken == 5);
}

TEST_CASE("rate 0 means unlimited", "[token_bucket]") {
    const auto t0 = TokenBucket::clock::time_point{};
    TokenBucket bucket(0.0, 1.0, t0);
    for (int i = 0; i < 10'000; ++i) REQUIRE(bucket.try_take(t0));
}
