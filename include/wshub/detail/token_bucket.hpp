// wshub/detail/token_bucket.hpp: a per-connection rate limiter.
//
// Refills continuously at `rate` tokens per second up to `burst`; time is
// passed in so tests need no clock.
//
// Thread safety: none; one per connection, used on the hub's strand.
#pragma once

#include <algorithm>
#include <chrono>

namespace wshub::detail {

class TokenBucket {
public:
    using clock = std::chrono::steady_clock;

    TokenBucket(double rate_per_second, double burst, clock::time_point now) noexcept
        : rate_(rate_per_second), burst_(std::max(burst, 1.0)), tokens_(burst_), last_(now) {}

    // Takes one token if there is one. A rate of 0 means unlimited.
    bool try_take(clock::time_point now) noexcept {
        if (rate_ <= 0.0) return true;
        const double elapsed = std::chrono::duration<double>(now - last_).count();
        if (elapsed > 0) {
            tokens_ = std::min(burst_, tokens_ + elapsed * rate_);
            last_ = now;
        }
        if (tokens_ < 1.0) return false;
        tokens_ -= 1.0;
        return true;
    }

private:
    double rate_;
    double burst_;
    double tokens_;
    clock::time_point last_;
};

}  // namespace wshub::detail
